package osdir

import (
	"os"

	"golang.org/x/sys/unix"
)

// Fdatasync makes f's data and the metadata needed to read it durable.
func Fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err == unix.EINTR {
			continue // interrupted before it ran: not a retry of a failed sync
		}
		if err != nil {
			return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		}
		return nil
	}
}

// Preallocate reserves size bytes for f and sets its size (fallocate mode 0).
func Preallocate(f *os.File, size int64) error {
	if size <= 0 {
		return nil
	}
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
			// Some file systems have no fallocate: a sized file still reads
			// back zeros, only the reservation is lost.
			return f.Truncate(size)
		}
		if err != nil {
			return NoSpace(&os.PathError{Op: "fallocate", Path: f.Name(), Err: err})
		}
		return nil
	}
}
