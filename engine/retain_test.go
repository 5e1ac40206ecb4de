package engine

import (
	"testing"

	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// RetainAll keeps every sealed segment through any number of rotations,
// where the default keeps ten: a log whose caller deletes entries itself
// (a Raft log before its snapshot) must not lose them to retention.
func TestRetainAllKeepsEverySegment(t *testing.T) {
	for _, tc := range []struct {
		name   string
		retain int
		want   int // segments left after 30 rotations
	}{
		{"default", 0, DefaultSegmentsToRetain + 1},
		{"RetainAll", RetainAll, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memfs.New(4096)
			c := openT(t, Config{FS: mem, SegmentSize: 50, SegmentsToRetain: tc.retain})
			for i := 1; i <= 30; i++ {
				mustFlush(t, c, []*PendingEntry{entry(LSN(i), byte(i), 100)}, true)
			}
			ids, err := c.segmentIDs()
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != tc.want {
				t.Fatalf("%d segments %v after 30 rotations, want %d", len(ids), ids, tc.want)
			}
			got := replayAll(t, c, 0)
			if first := 30 - tc.want + 1; len(got) != tc.want || got[0].lsn != LSN(first) {
				t.Fatalf("replayed %d entries from %v, want %d from %d", len(got), got[0].lsn, tc.want, first)
			}
		})
	}
}
