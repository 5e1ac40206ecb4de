package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/dwal-project/dwal/engine/fallback"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// opaqueFS is a Config.FS as a user might write one: it embeds the vfs.FS
// interface, so only the interface's methods are promoted, and has no
// DirectIO and no Unwrap. The engine cannot know whether its writes bypass
// the page cache, so it must treat it as buffered.
type opaqueFS struct{ vfs.FS }

// declaresFS wraps an FS, says what its DirectIO is, and exposes the wrapped
// FS through Unwrap: the outermost declaration is the one that counts.
type declaresFS struct {
	vfs.FS
	direct bool
}

func (f declaresFS) DirectIO() bool { return f.direct }
func (f declaresFS) Unwrap() vfs.FS { return f.FS }

// Who is treated as buffered: every FS that does not declare direct I/O,
// found on the FS itself or on what it wraps (Unwrap).
func TestDirectIODeclaration(t *testing.T) {
	mem := memfs.New(4096)
	fb, err := fallback.New(t.TempDir(), vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		fs       vfs.FS
		buffered bool
	}{
		{"memfs", mem, false},
		{"errorfs(memfs)", errorfs.New(mem, nil), false},
		{"errorfs(errorfs(memfs))", errorfs.New(errorfs.New(mem, nil), nil), false},
		{"opaque(memfs)", opaqueFS{mem}, true},
		{"errorfs(opaque(memfs))", errorfs.New(opaqueFS{mem}, nil), true},
		{"fallback", fb, true},
		{"errorfs(fallback)", errorfs.New(fb, nil), true},
		{"says false over memfs", declaresFS{mem, false}, true},
		{"says true over opaque(memfs)", declaresFS{opaqueFS{mem}, true}, false},
	} {
		if got := pageCache(c.fs); got != c.buffered {
			t.Errorf("pageCache(%s) = %t, want %t", c.name, got, c.buffered)
		}
	}
}

// A failed sync on a Config.FS that does not declare direct I/O takes the
// buffered path of the sync-failure rule: the Coordinator turns read-only
// (sticky: every later write fails), reads still work, and neither a reopen
// nor a crash brings the failed batch back. The FS underneath is memfs,
// which on its own declares direct I/O and is rolled back instead (the
// control case), so the declaration is the only difference.
func TestSyncFailureOnFSWithoutDirectIOTurnsReadOnly(t *testing.T) {
	for _, hide := range []bool{true, false} {
		name := "opaque"
		if !hide {
			name = "declared-direct"
		}
		t.Run(name, func(t *testing.T) {
			mem := memfs.New(4096)
			var inner vfs.FS = mem
			if hide {
				inner = opaqueFS{mem}
			}
			efs := errorfs.New(inner, nil)
			cfg := DefaultConfig("buffered")
			cfg.FS = efs
			cfg.SegmentSize = 1 << 20 // every crash clone copies the segments
			c := openT(t, cfg)

			mustFlush(t, c, []*PendingEntry{NewAsyncEntry(1, []byte("acked-1")), NewAsyncEntry(2, []byte("acked-2"))}, true)
			efs.SetInjector(errorfs.Fault{}.On(segWrites(errorfs.OpWriteSync)))
			b3, h3 := NewSyncEntry(3, []byte("failed-3"))
			b4, h4 := NewSyncEntry(4, []byte("failed-4"))
			_, err := c.Flush([]*PendingEntry{b3, b4}, true)
			efs.SetInjector(nil)
			if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "LSN 3..4") {
				t.Fatalf("Flush with a failing fdatasync: %v, want EIO naming LSN 3..4", err)
			}
			if efs.Injected(errorfs.OpWriteSync) == 0 {
				t.Fatal("no sync failure was injected")
			}
			for _, h := range []*Completion{h3, h4} {
				if h.Wait() == nil {
					t.Fatal("a failed batch's completion was told success")
				}
			}

			want := []LSN{1, 2}
			if !hide {
				// Control: declared direct, so rolled back and writable.
				mustFlush(t, c, []*PendingEntry{NewAsyncEntry(5, []byte("after-5"))}, true)
				if c.CurrentSegmentID() != 2 {
					t.Errorf("resumed in segment %d after the rollback, want a fresh segment 2", c.CurrentSegmentID())
				}
				if got := replayLSNs(t, c); !slices.Equal(got, append(want, 5)) {
					t.Fatalf("replayed %v, want %v", got, append(want, 5))
				}
				return
			}

			// Read-only, and it stays so: Flush (synced or not), Append and
			// TruncateToLSN all refuse, naming the batch whose fate is unknown.
			for i, sync := range []bool{true, false, true} {
				_, err := c.Flush([]*PendingEntry{NewAsyncEntry(LSN(5+i), []byte("later"))}, sync)
				if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "LSN 3..4") ||
					!strings.Contains(err.Error(), "buffered") {
					t.Fatalf("Flush %d after the failed sync: %v, want ErrReadOnly (buffered backend) naming LSN 3..4", i, err)
				}
			}
			if err := c.Append(context.Background(), 8, []byte("later")); !errors.Is(err, ErrReadOnly) {
				t.Fatalf("Append when read-only: %v, want ErrReadOnly", err)
			}
			if _, err := c.TruncateToLSN(2); !errors.Is(err, ErrReadOnly) {
				t.Fatalf("TruncateToLSN when read-only: %v, want ErrReadOnly", err)
			}
			if st := c.Stats(); !st.ReadOnly || st.SyncErrors != 1 {
				t.Errorf("Stats: ReadOnly %t, SyncErrors %d; want true, 1", st.ReadOnly, st.SyncErrors)
			}
			// Reads still work, and show only what was acknowledged.
			if got := replayLSNs(t, c); !slices.Equal(got, want) {
				t.Fatalf("replayed %v while read-only, want %v", got, want)
			}

			// A crash now, whatever the volatile cache kept, never brings
			// the failed batch back.
			for seed := range int64(10) {
				cl := mem.CrashClone(seed)
				cc := DefaultConfig("crash")
				cc.FS = opaqueFS{cl}
				cc.SegmentSize = cfg.SegmentSize
				c3, err := Open(cc)
				if err != nil {
					t.Fatalf("seed %d: Open after a crash: %v", seed, err)
				}
				got := replayLSNs(t, c3)
				c3.Close()
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d: after a crash replayed %v, want %v\n%s", seed, got, want, cl.CrashReport())
				}
			}

			// Reopening runs recovery: the failed batch is not replayed and
			// the log is writable again.
			if err := c.Close(); err != nil {
				t.Logf("Close of a read-only Coordinator: %v", err)
			}
			c2 := openT(t, cfg)
			if got := replayLSNs(t, c2); !slices.Equal(got, want) {
				t.Fatalf("after reopen replayed %v, want %v", got, want)
			}
			mustFlush(t, c2, []*PendingEntry{NewAsyncEntry(3, []byte("retried-3"))}, true)
			if got := replayLSNs(t, c2); !slices.Equal(got, []LSN{1, 2, 3}) {
				t.Fatalf("after reopen and a new batch replayed %v, want [1 2 3]", got)
			}
			var data []string
			c2.Replay(3, func(_ LSN, b []byte) error { data = append(data, string(b)); return nil })
			if !slices.Equal(data, []string{"retried-3"}) {
				t.Fatalf("LSN 3 after reopen holds %q, want the new batch's \"retried-3\"", data)
			}
		})
	}
}

// replayLSNs replays c from the start and returns the LSNs it saw.
func replayLSNs(t *testing.T, c *Coordinator) []LSN {
	t.Helper()
	var got []LSN
	if err := c.Replay(0, func(l LSN, _ []byte) error { got = append(got, l); return nil }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got
}
