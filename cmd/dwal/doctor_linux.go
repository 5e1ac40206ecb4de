package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs/osdir"
)

var (
	errPerm  error = unix.EPERM
	errNoSys error = unix.ENOSYS
)

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Sprintf("unknown (uname: %v)", err)
	}
	return fmt.Sprintf("%s %s %s", unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Release[:]),
		unix.ByteSliceToString(u.Machine[:]))
}

// uringAvailable reads kernel.io_uring_disabled (-1: the kernel has no such
// sysctl, before 6.6) and tries io_uring_setup with one entry.
func uringAvailable() (int, error) {
	disabled := -1
	if b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			disabled = v
		}
	}
	var params [120]byte // struct io_uring_params, zeroed
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 {
		return disabled, fmt.Errorf("io_uring_setup: %w", errno)
	}
	unix.Close(int(fd))
	return disabled, nil
}

// File system magic numbers (statfs f_type), from linux/magic.h and the
// file systems' sources.
var fsMagics = map[int64]string{
	0xEF53:     "ext4", // ext2, ext3 and ext4 share it; mountinfo tells them apart
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0x858458F6: "ramfs",
	0x794C7630: "overlayfs",
	0x65735546: "fuse",
	0x6969:     "nfs",
	0xFF534D42: "cifs",
	0xFE534D42: "smb2",
	0x2FC12FC1: "zfs",
	0xF2F52010: "f2fs",
	0xCA451A4E: "bcachefs",
	0x01021997: "9p",
	0x00C36400: "ceph",
	0x0BD00BD0: "lustre",
	0x47504653: "gpfs",
	0x4D44:     "vfat",
	0x2011BAB0: "exfat",
	0x5346544E: "ntfs",
	0x73717368: "squashfs",
	0x3153464A: "jfs",
	0x52654973: "reiserfs",
}

func fileSystem(dir string) (fsInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fsInfo{}, fmt.Errorf("statfs: %w", err)
	}
	fi := fsInfo{magic: int64(st.Type), free: uint64(st.Bavail) * uint64(st.Bsize), total: uint64(st.Blocks) * uint64(st.Bsize)}
	fi.name = fsMagics[fi.magic]
	if fi.name == "" {
		fi.name = "unknown"
	}
	if m, ok := findMount(dir); ok {
		fi.mountPoint, fi.mountSource, fi.mountOpts = m.point, m.source, m.opts
		if m.fstype != "" && fi.name != "tmpfs" && fi.name != "ramfs" {
			fi.name = m.fstype
		}
	}
	switch fi.magic {
	case 0x01021994, 0x858458F6:
		fi.memory = true
	case 0x65735546, 0x6969, 0xFF534D42, 0xFE534D42, 0x01021997, 0x00C36400, 0x0BD00BD0, 0x47504653:
		fi.network = true
	}
	return fi, nil
}

type mount struct{ point, fstype, source, opts string }

// findMount finds the mount that holds dir in /proc/self/mountinfo: the
// longest mount point that contains it (the last one mounted there).
func findMount(dir string) (mount, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return mount{}, false
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return mount{}, false
	}
	defer f.Close()
	var best mount
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root point options [optional...] - fstype source superoptions
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(fields) < sep+3 {
			continue
		}
		point := unescapeMount(fields[4])
		if !within(abs, point) || (found && len(point) < len(best.point)) {
			continue
		}
		best = mount{point: point, fstype: fields[sep+1], source: unescapeMount(fields[sep+2]), opts: fields[5]}
		found = true
	}
	return best, found
}

func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// deviceInfo describes the block device under dir: its write cache and
// whether it rotates ("" when there is no block device, as on tmpfs).
func deviceInfo(dir string) string {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return ""
	}
	dev := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	p, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return ""
	}
	name := filepath.Base(p)
	queue := filepath.Join(p, "queue")
	if _, err := os.Stat(queue); err != nil {
		queue = filepath.Join(filepath.Dir(p), "queue") // a partition: its disk's queue
		name += " on " + filepath.Base(filepath.Dir(p))
	}
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(queue, f))
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	rot := "no"
	if read("rotational") == "1" {
		rot = "yes"
	}
	return fmt.Sprintf("%s: write cache %q, rotational %s", name, read("write_cache"), rot)
}

// tempFile creates an empty dwal-doctor-*.tmp in dir and opens it again
// (with O_DIRECT when direct, through osdir.OpenDirect); remove removes it.
// The returned fd is the second open's, owned by remove.
func tempFile(dir string, direct bool) (fd int, pre *os.File, remove func(), err error) {
	f, err := os.CreateTemp(dir, "dwal-doctor-*.tmp")
	if err != nil {
		return -1, nil, nil, err
	}
	name := f.Name()
	// NB: O_DIRECT is asked for on a second open, not at creation: where it
	// is refused, open(O_CREAT|O_DIRECT) fails after creating the file.
	var g *os.File
	if direct {
		g, err = osdir.OpenDirect(name, os.O_RDWR, 0)
	} else {
		g, err = os.OpenFile(name, os.O_RDWR, 0)
	}
	if err != nil {
		f.Close()
		os.Remove(name)
		// NB: the errno alone, not the PathError: the file's name changes
		// every run and would only repeat what the report already says.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if direct {
			return -1, nil, nil, fmt.Errorf("open(O_DIRECT): %w", err)
		}
		return -1, nil, nil, fmt.Errorf("open: %w", err)
	}
	return int(g.Fd()), f, func() { g.Close(); f.Close(); os.Remove(name) }, nil
}

// probeDirect opens a file in dir with O_DIRECT and writes one aligned block.
func probeDirect(dir string, bs int) error {
	fd, _, remove, err := tempFile(dir, true)
	if err != nil {
		return err
	}
	defer remove()
	b := align.Alloc(bs, bs)
	if _, err := unix.Pwrite(fd, b, 0); err != nil {
		return fmt.Errorf("aligned %d-byte write: %w", bs, err)
	}
	return nil
}

// measureBytes bounds the file of the fallocated and appending runs.
const measureBytes = 64 << 20

// measureSync times bs-byte writes each followed by fdatasync, for total/3
// each: over blocks already written and synced, into blocks just
// fallocated (unwritten extents), and past the end of a growing file.
func measureSync(dir string, total time.Duration, bs int, direct bool) []latency {
	per := total / 3
	buf := align.Alloc(bs, bs)
	for i := range buf {
		buf[i] = byte(i*31 + 7)
	}
	run := func(l latency, prepare func(fd int, f *os.File) (blocks int64, err error)) latency {
		fd, f, remove, err := tempFile(dir, direct)
		if err != nil {
			l.err = err
			return l
		}
		defer remove()
		blocks, err := prepare(fd, f)
		if err != nil {
			l.err = err
			return l
		}
		samples := make([]time.Duration, 0, 4096)
		deadline := time.Now().Add(per)
		for i := int64(0); time.Now().Before(deadline); i++ {
			if l.name != latInit && i >= blocks {
				l.note = fmt.Sprintf("stopped after %s", bytesIEC(uint64(blocks)*uint64(bs)))
				break
			}
			off := (i % blocks) * int64(bs)
			t0 := time.Now()
			if _, err := unix.Pwrite(fd, buf, off); err != nil {
				l.err = fmt.Errorf("write at %d: %w", off, err)
				return l
			}
			if err := unix.Fdatasync(fd); err != nil {
				l.err = fmt.Errorf("fdatasync: %w", err)
				return l
			}
			samples = append(samples, time.Since(t0))
		}
		percentiles(&l, samples)
		return l
	}
	size := int64(measureBytes)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Blocks > 0 {
		size = min(size, int64(uint64(st.Bavail)*uint64(st.Bsize)/8))
	} else {
		size = measureBytes / 4 // ramfs reports no size: its files take memory
	}
	size &^= int64(bs - 1)
	if size < int64(bs) {
		return []latency{{name: latInit, err: errors.New("not enough free space to measure")}}
	}
	return []latency{
		run(latency{name: latInit, where: "into initialised blocks"}, func(fd int, f *os.File) (int64, error) {
			// Write the blocks once and sync them: later writes into them
			// change no metadata. 2048 blocks are cycled through.
			n := min(size/int64(bs), 2048)
			for i := int64(0); i < n; i++ {
				if _, err := f.WriteAt(buf, i*int64(bs)); err != nil {
					return 0, err
				}
			}
			return n, f.Sync()
		}),
		run(latency{name: latFalloc, where: "into freshly fallocated blocks"}, func(fd int, f *os.File) (int64, error) {
			if err := unix.Fallocate(fd, 0, 0, size); err != nil {
				return 0, fmt.Errorf("fallocate: %w", err)
			}
			return size / int64(bs), unix.Fsync(fd)
		}),
		run(latency{name: latAppend, where: "appending to the file"}, func(fd int, f *os.File) (int64, error) {
			return size / int64(bs), nil
		}),
	}
}
