package osdir

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// OpenDirect opens path with O_DIRECT added to flag (os.OpenFile's flags;
// perm applies when the file is created): reads and writes bypass the page
// cache, and their buffers, lengths and offsets must be aligned to the
// file system's DIO alignment. Where O_DIRECT is refused (ramfs, tmpfs
// before Linux 6.6, some FUSE and overlay mounts) the error is a
// *os.PathError whose Err is the errno, EINVAL.
//
// With os.O_CREATE the file is opened without O_DIRECT and switched to it
// with fcntl(F_SETFL); when that is refused the file is closed and, if flag
// has os.O_EXCL too (so the file is surely the one just created), removed.
//
// NB: O_DIRECT is set with fcntl(F_SETFL) after the create, not passed to
// open: where O_DIRECT is refused (ramfs, say) open(O_CREAT|O_DIRECT) fails
// with EINVAL after it has created the file, and the caller cannot tell
// whether the name it would then remove is its own.
func OpenDirect(path string, flag int, perm fs.FileMode) (*os.File, error) {
	if flag&os.O_CREATE == 0 {
		return os.OpenFile(path, flag|unix.O_DIRECT, perm)
	}
	f, err := os.OpenFile(path, flag, perm)
	if err != nil {
		return nil, err
	}
	if err := setDirect(f); err != nil {
		f.Close()
		if flag&os.O_EXCL != 0 {
			os.Remove(path)
		}
		return nil, err
	}
	return f, nil
}

// setDirect turns on O_DIRECT for f.
func setDirect(f *os.File) error {
	fd := f.Fd()
	fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(fd, unix.F_SETFL, fl|unix.O_DIRECT)
	}
	if err != nil {
		return &os.PathError{Op: "fcntl O_DIRECT", Path: f.Name(), Err: err}
	}
	return nil
}
