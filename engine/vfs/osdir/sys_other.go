//go:build !linux && !darwin

package osdir

import "os"

// Fdatasync makes f durable (fsync; FlushFileBuffers on windows).
func Fdatasync(f *os.File) error { return f.Sync() }

// Preallocate sets f's size; the blocks read back as zeros.
func Preallocate(f *os.File, size int64) error {
	if size <= 0 {
		return nil
	}
	return NoSpace(f.Truncate(size))
}
