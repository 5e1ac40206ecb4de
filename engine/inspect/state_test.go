package inspect

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/internal/segment"
)

// Dir, Verify and Dump honour the log-state record: Dump hands out only
// live entries (not below DeleteBefore's LSN, not above a TruncateAfter
// cut, the entries written after the cut instead), Dir reports the record
// and what it deletes of each segment, and Verify finds a clean directory.
func TestInspectHonoursDeletions(t *testing.T) {
	dir := t.TempDir()
	cfg := engine.DefaultConfig(dir)
	cfg.SegmentSize = 16 << 10
	cfg.SegmentsToRetain = engine.RetainAll
	c := openT(t, cfg)
	for l := engine.LSN(1); l <= 60; l++ {
		mustFlush(t, c, []*engine.PendingEntry{entry(l, 'a', 1000)}, true)
	}
	if err := c.DeleteBefore(11); err != nil {
		t.Fatal(err)
	}
	if err := c.TruncateAfter(40); err != nil {
		t.Fatal(err)
	}
	for l := engine.LSN(41); l <= 45; l++ {
		mustFlush(t, c, []*engine.PendingEntry{entry(l, 'b', 1000)}, true)
	}
	c.Close()

	got, err := dumpAll(t, dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lsns []engine.LSN
	for _, d := range got {
		lsns = append(lsns, d.lsn)
		want := "a"
		if d.lsn > 40 {
			want = "b"
		}
		if d.b != strings.Repeat(want, 1000) {
			t.Fatalf("LSN %d dumped with the deleted version's bytes", d.lsn)
		}
	}
	var want []engine.LSN
	for l := engine.LSN(11); l <= 45; l++ {
		want = append(want, l)
	}
	if !slices.Equal(lsns, want) {
		t.Fatalf("Dump gave LSN %v, want 11..45", lsns)
	}

	r, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.State == nil || len(r.State.Logs) != 1 || r.State.Logs[0].First != 11 || len(r.State.Logs[0].Cuts) != 1 || r.State.Logs[0].Cuts[0].After != 40 {
		t.Fatalf("Report.State = %+v, want log 0 with first 11 and a cut after 40", r.State)
	}
	some := 0
	for _, s := range r.Segments {
		if s.Deleted == "some" {
			some++
		}
	}
	if some == 0 {
		t.Fatalf("no segment reported partly deleted: %+v", r.Segments)
	}
	if len(r.Problems) != 0 {
		t.Fatalf("Verify found problems in a clean directory: %v", r.Problems)
	}

	// A corrupt record is an error naming the file.
	p := filepath.Join(dir, segment.StateName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[20] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	probs, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) == 0 || probs[0].File != segment.StateName || probs[0].Severity != SeverityError {
		t.Fatalf("Verify of a corrupt %s: %v", segment.StateName, probs)
	}
	if err := Dump(dir, DumpOptions{}, func(uint64, int64, uint64, engine.LSN, []byte) error { return nil }); err == nil {
		t.Fatal("Dump of a directory with a corrupt log-state record succeeded")
	}
}
