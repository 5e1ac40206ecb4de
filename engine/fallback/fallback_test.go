package fallback

import (
	"os"
	"testing"

	"github.com/dwal-project/dwal/engine/vfs"
)

// An alignment given in Options is used as is (no probe file is created to
// discover one); one that is not a power of two is refused.
func TestGivenAlignment(t *testing.T) {
	dir := t.TempDir()
	f, err := New(dir, vfs.Options{Alignment: 8192})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Alignment(); got != 8192 {
		t.Errorf("Alignment() = %d, want the given 8192", got)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("New with a given alignment left %d files (%v)", len(ents), err)
	}
	for _, bad := range []int{3000, 512} {
		if _, err := New(dir, vfs.Options{Alignment: bad}); err == nil {
			t.Errorf("New accepted an alignment of %d", bad)
		}
	}
}
