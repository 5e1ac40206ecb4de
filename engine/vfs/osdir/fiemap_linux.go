package osdir

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel ABI of FS_IOC_FIEMAP (include/uapi/linux/fiemap.h and fs.h), which
// x/sys/unix does not define.
const (
	fsIocFiemap         = 0xc020660b // _IOWR('f', 11, struct fiemap)
	fiemapFlagSync      = 0x1        // write back dirty pages before mapping
	fiemapExtentLast    = 0x1
	fiemapExtentUnknown = 0x2
	fiemapExtentDelay   = 0x4
	fiemapExtentUnwrit  = 0x800
	fiemapExtents       = 32 // extents fetched per ioctl
)

// fiemapExtent is struct fiemap_extent.
type fiemapExtent struct {
	logical, physical, length uint64
	_                         [2]uint64
	flags                     uint32
	_                         [3]uint32
}

// fiemapReq is struct fiemap with room for fiemapExtents extents.
type fiemapReq struct {
	start, length                 uint64
	flags, mapped, count, reserve uint32
	extents                       [fiemapExtents]fiemapExtent
}

func init() {
	if unsafe.Sizeof(fiemapExtent{}) != 56 || unsafe.Offsetof(fiemapReq{}.extents) != 32 {
		panic("osdir: fiemap layout does not match the kernel ABI")
	}
}

// WrittenPrefix returns how many bytes of f, from its start, the file
// system's extent map shows as written (allocated, not a hole, not an
// unwritten (fallocated, never written) extent, not delayed), and f's size. It is the
// file system's own record, so it needs no bookkeeping of ours and cannot
// be stale; it errors (wrapping errors.ErrUnsupported) where FIEMAP is not
// supported (tmpfs, some FUSE mounts).
func WrittenPrefix(f *os.File) (written, size int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = st.Size()
	written, err = writtenPrefix(f, size)
	return min(written, size), size, err
}

// writtenPrefix walks f's extents from 0 until a gap or an extent not
// written, up to size.
func writtenPrefix(f *os.File, size int64) (int64, error) {
	var req fiemapReq
	pos := int64(0)
	for pos < size {
		req = fiemapReq{start: uint64(pos), length: uint64(size - pos), flags: fiemapFlagSync, count: fiemapExtents}
		if err := ioctlFiemap(f, &req); err != nil {
			return 0, err
		}
		if req.mapped == 0 {
			break // a hole up to the end
		}
		for _, e := range req.extents[:req.mapped] {
			if int64(e.logical) > pos || e.flags&(fiemapExtentUnwrit|fiemapExtentDelay|fiemapExtentUnknown) != 0 {
				return pos, nil // a hole, or blocks never written
			}
			pos = max(pos, int64(e.logical+e.length))
			if e.flags&fiemapExtentLast != 0 {
				return pos, nil
			}
		}
	}
	return pos, nil
}

func ioctlFiemap(f *os.File, req *fiemapReq) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(req)))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EOPNOTSUPP, unix.ENOTTY, unix.EINVAL:
			return &os.PathError{Op: "fiemap", Path: f.Name(), Err: errors.ErrUnsupported}
		}
		return &os.PathError{Op: "fiemap", Path: f.Name(), Err: errno}
	}
}
