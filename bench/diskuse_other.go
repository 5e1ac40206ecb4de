//go:build !unix

package bench

import "io/fs"

// allocatedBytes is file fi's size (what it allocates is not known here).
func allocatedBytes(fi fs.FileInfo) int64 { return fi.Size() }
