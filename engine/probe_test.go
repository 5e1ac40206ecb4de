package engine

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

func TestProbeBackendMatchesOpen(t *testing.T) {
	dir := t.TempDir()
	info, err := ProbeBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := openT(t, DefaultConfig(dir))
	if got := c.Backend(); got != info {
		t.Fatalf("ProbeBackend %+v, Open picked %+v", info, got)
	}
	if _, err := ProbeBackend(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
}
