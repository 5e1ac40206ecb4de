//go:build unix

package bench

import (
	"io/fs"
	"syscall"
)

// allocatedBytes is what file fi has allocated on disk.
func allocatedBytes(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
