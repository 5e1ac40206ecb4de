//go:build !unix

package bench

import (
	"io/fs"
	"path/filepath"
)

// allocated is the size of the files under dir (what they allocate is not
// known here).
func allocated(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}
