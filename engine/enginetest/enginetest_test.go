package enginetest_test

import (
	"testing"

	"github.com/dwal-project/dwal/engine/enginetest"
	"github.com/dwal-project/dwal/engine/errorfs"
	"github.com/dwal-project/dwal/engine/fallback"
	"github.com/dwal-project/dwal/engine/memfs"
	"github.com/dwal-project/dwal/engine/vfs"
)

func TestFallback(t *testing.T) {
	enginetest.Run(t, func(t *testing.T) vfs.FS {
		f, err := fallback.New(t.TempDir(), vfs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

func TestMemFS(t *testing.T) {
	for _, a := range []int{512, 4096} {
		t.Run(map[int]string{512: "512", 4096: "4096"}[a], func(t *testing.T) {
			enginetest.Run(t, func(t *testing.T) vfs.FS {
				m := memfs.New(a)
				t.Cleanup(func() {
					if open := m.OpenFiles(); len(open) > 0 {
						t.Errorf("files left open: %q", open)
					}
				})
				return m
			})
		})
	}
}

func TestErrorFSNoFaults(t *testing.T) {
	enginetest.Run(t, func(t *testing.T) vfs.FS {
		return errorfs.New(memfs.New(4096), nil)
	})
}

// TestErrorFSNeverFiring wraps with an injector that is asked about every op
// and never fires: the wrapper's own plumbing must keep the contract.
func TestErrorFSNeverFiring(t *testing.T) {
	enginetest.Run(t, func(t *testing.T) vfs.FS {
		return errorfs.New(memfs.New(4096), errorfs.OnIndex(-1))
	})
}

func TestErrorFSOverFallback(t *testing.T) {
	enginetest.Run(t, func(t *testing.T) vfs.FS {
		f, err := fallback.New(t.TempDir(), vfs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return errorfs.New(f, errorfs.Randomly(0, 1))
	})
}
