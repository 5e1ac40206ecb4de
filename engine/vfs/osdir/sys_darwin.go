package osdir

import (
	"os"

	"golang.org/x/sys/unix"
)

// Fdatasync makes f durable with F_FULLFSYNC: plain fsync on darwin does not
// flush the drive's cache.
func Fdatasync(f *os.File) error {
	if _, err := unix.FcntlInt(f.Fd(), unix.F_FULLFSYNC, 0); err != nil {
		return &os.PathError{Op: "fcntl F_FULLFSYNC", Path: f.Name(), Err: err}
	}
	return nil
}

// Preallocate reserves size bytes (F_PREALLOCATE) and sets the size.
func Preallocate(f *os.File, size int64) error {
	if size <= 0 {
		return nil
	}
	st := unix.Fstore_t{Flags: unix.F_ALLOCATEALL, Posmode: unix.F_PEOFPOSMODE, Length: size}
	if err := unix.FcntlFstore(f.Fd(), unix.F_PREALLOCATE, &st); err != nil {
		st.Flags = unix.F_ALLOCATECONTIG // retry without the all-or-nothing flag
		_ = unix.FcntlFstore(f.Fd(), unix.F_PREALLOCATE, &st)
	}
	return NoSpace(f.Truncate(size))
}
