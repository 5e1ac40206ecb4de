package inspect

import (
	"testing"

	"github.com/dwal-project/dwal/engine"
)

func openT(t *testing.T, cfg engine.Config) *engine.Coordinator {
	t.Helper()
	c, err := engine.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// entry is an entry of n bytes b.
func entry(lsn engine.LSN, b byte, n int) *engine.PendingEntry {
	d := make([]byte, n)
	for i := range d {
		d[i] = b
	}
	return engine.NewAsyncEntry(lsn, d)
}

func mustFlush(t *testing.T, c *engine.Coordinator, es []*engine.PendingEntry, sync bool) {
	t.Helper()
	if _, err := c.Flush(es, sync); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}
