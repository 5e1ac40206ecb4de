package engine

import (
	"testing"

	"github.com/dwal-project/dwal/engine/uring"
)

// uringBackends is the io_uring backend when it runs here.
func uringBackends(t *testing.T) []backend {
	dir := t.TempDir()
	if err := uring.Probe(dir); err != nil {
		t.Logf("io_uring backend not tested here: %v", err)
		return nil
	}
	return []backend{{
		name: "io_uring",
		config: func(t *testing.T) Config {
			c := DefaultConfig(t.TempDir())
			c.Backend = BackendUring
			return c
		},
		realDir: true,
	}}
}
