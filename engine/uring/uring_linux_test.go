//go:build linux

package uring

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	iouring_syscall "github.com/iceber/iouring-go/syscall"
	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
)

// newFS returns an FS in a fresh directory, or skips the test saying why the
// backend cannot run here.
func newFS(t testing.TB) *FS {
	t.Helper()
	dir := t.TempDir()
	if err := Probe(dir); err != nil {
		if errors.Is(err, vfs.ErrUnsupported) {
			t.Skipf("io_uring backend unavailable in %s: %v", dir, err)
		}
		t.Fatalf("Probe: %v", err)
	}
	f, err := New(dir, vfs.Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("FS.Close: %v", err)
		}
	})
	return f
}

func create(t testing.TB, f *FS, name string, size int64) vfs.File {
	t.Helper()
	vf, err := f.Create(name, size)
	if err != nil {
		t.Fatalf("Create(%s, %d): %v", name, size, err)
	}
	t.Cleanup(func() { vf.Close() })
	return vf
}

// block returns an aligned buffer of n bytes filled from seed.
func block(n, a int, seed byte) []byte {
	b := align.Alloc(n, a)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

func readBack(t *testing.T, vf vfs.File, a int, off int64, want []byte) {
	t.Helper()
	got := align.Alloc(len(want), a)
	n, err := vf.ReadAt(got, off)
	if err != nil || n != len(want) {
		t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", len(want), off, n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ReadAt at %d: bytes differ from what was written", off)
	}
}

func TestNameAlignment(t *testing.T) {
	f := newFS(t)
	if f.Name() != "io_uring" {
		t.Errorf("Name() = %q", f.Name())
	}
	if a := f.Alignment(); a < align.Default || a&(a-1) != 0 {
		t.Errorf("Alignment() = %d", a)
	}
}

func TestRoundTrip(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	const size = 1 << 20
	vf := create(t, f, "000001.log", size)
	if n, err := vf.Size(); err != nil || n != size {
		t.Fatalf("Size after Create = %d, %v; want %d", n, err, size)
	}
	// Preallocated blocks read back as zeros.
	readBack(t, vf, a, 8*int64(a), make([]byte, a))

	cases := []struct {
		off  int64
		n    int
		mode vfs.SyncMode
	}{
		{0, a, vfs.NoSync},
		{int64(a), 3 * a, vfs.Fdatasync},
		{64 << 10, a, vfs.DSync},
		{size - int64(a), a, vfs.Fdatasync},
		{size, 2 * a, vfs.Fdatasync}, // appends: the size grows
		{4 * size, a, vfs.DSync},     // past EOF, leaving a hole
		{128 << 10, 64 << 10, vfs.NoSync},
	}
	for i, c := range cases {
		p := block(c.n, a, byte(i+1))
		if err := vf.WriteAt(p, c.off, c.mode); err != nil {
			t.Fatalf("WriteAt(%d bytes at %d, %v): %v", c.n, c.off, c.mode, err)
		}
	}
	for i, c := range cases {
		readBack(t, vf, a, c.off, block(c.n, a, byte(i+1)))
	}
	if n, err := vf.Size(); err != nil || n != 4*size+int64(a) {
		t.Fatalf("Size = %d, %v; want %d", n, err, 4*size+a)
	}
	if err := vf.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	// Reopen read-only: the bytes are there.
	ro, err := f.Open("000001.log", true)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer ro.Close()
	for i, c := range cases {
		readBack(t, ro, a, c.off, block(c.n, a, byte(i+1)))
	}
}

func TestMisalignedWritesNothing(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	vf := create(t, f, "x", 4*int64(a))
	big := block(3*a, a, 9)
	bad := []struct {
		name string
		p    []byte
		off  int64
	}{
		{"address", big[1 : 1+a], 0},
		{"address+512", big[512 : 512+a], 0},
		{"length", big[:a-512], 0},
		{"length+1", big[:a+1], 0},
		{"offset", big[:a], 512},
		{"negative offset", big[:a], -int64(a)},
		{"empty", big[:0], 0},
		{"nil", nil, 0},
	}
	for _, c := range bad {
		for _, mode := range []vfs.SyncMode{vfs.NoSync, vfs.Fdatasync, vfs.DSync} {
			err := vf.WriteAt(c.p, c.off, mode)
			if !errors.Is(err, align.ErrMisaligned) {
				t.Errorf("WriteAt %s (%v) = %v, want ErrMisaligned", c.name, mode, err)
			}
		}
		if _, err := vf.ReadAt(c.p, c.off); !errors.Is(err, align.ErrMisaligned) {
			t.Errorf("ReadAt %s = %v, want ErrMisaligned", c.name, err)
		}
	}
	readBack(t, vf, a, 0, make([]byte, 4*a))
	if n, _ := vf.Size(); n != 4*int64(a) {
		t.Errorf("Size = %d after rejected writes", n)
	}
	if err := vf.WriteAt(big[:a], 0, vfs.SyncMode(9)); err == nil {
		t.Errorf("WriteAt with an unknown sync mode succeeded")
	}
}

func TestReadAtEOF(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	vf := create(t, f, "eof", 0)
	p := block(2*a, a, 3)
	if err := vf.WriteAt(p, 0, vfs.Fdatasync); err != nil {
		t.Fatal(err)
	}
	buf := align.Alloc(4*a, a)
	// Exactly to the end: no error, like os.File.ReadAt.
	if n, err := vf.ReadAt(buf[:2*a], 0); n != 2*a || err != nil {
		t.Errorf("ReadAt to EOF = %d, %v; want %d, nil", n, err, 2*a)
	}
	// Across the end: fewer bytes, io.EOF.
	if n, err := vf.ReadAt(buf, 0); n != 2*a || err != io.EOF || !bytes.Equal(buf[:n], p) {
		t.Errorf("ReadAt across EOF = %d, %v; want %d, io.EOF", n, err, 2*a)
	}
	// At and past the end.
	for _, off := range []int64{2 * int64(a), 10 * int64(a)} {
		if n, err := vf.ReadAt(buf[:a], off); n != 0 || err != io.EOF {
			t.Errorf("ReadAt at %d = %d, %v; want 0, io.EOF", off, n, err)
		}
	}
	// A size that ends mid-block: O_DIRECT returns the bytes up to it.
	mid := int64(a) + 100
	if err := vf.Truncate(mid); err != nil {
		t.Fatal(err)
	}
	if n, err := vf.ReadAt(buf, 0); int64(n) != mid || err != io.EOF || !bytes.Equal(buf[:n], p[:n]) {
		t.Errorf("ReadAt with size %d = %d, %v; want %d, io.EOF", mid, n, err, mid)
	}
	if n, err := vf.Size(); n != mid || err != nil {
		t.Errorf("Size = %d, %v; want %d", n, err, mid)
	}
}

func TestConcurrentWriters(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	const writers, perWriter = 16, 24
	chunk := 2 * a
	vf := create(t, f, "conc", int64(writers*perWriter*chunk))
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := align.Alloc(chunk, a)
			for i := range perWriter {
				copy(p, block(chunk, a, byte(w*perWriter+i)))
				off := int64((i*writers + w) * chunk) // interleaved, disjoint
				if err := vf.WriteAt(p, off, vfs.SyncMode(i%3)); err != nil {
					errs <- fmt.Errorf("writer %d op %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		for i := range perWriter {
			readBack(t, vf, a, int64((i*writers+w)*chunk), block(chunk, a, byte(w*perWriter+i)))
		}
	}
}

// TestMoreCallersThanSlots: more callers than slots, mixing writes and
// reads, all complete (callers beyond the bound wait, none is lost).
func TestMoreCallersThanSlots(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	const callers = 2*slotCount + 3
	vf := create(t, f, "many", int64(callers*a))
	var wg sync.WaitGroup
	var failed sync.Map
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := block(a, a, byte(c))
			mode := vfs.NoSync
			if c%8 == 0 {
				mode = vfs.Fdatasync
			}
			if err := vf.WriteAt(p, int64(c*a), mode); err != nil {
				failed.Store(c, err)
			}
			if _, err := vf.ReadAt(align.Alloc(a, a), int64(c*a)); err != nil {
				failed.Store(-c, err)
			}
		}()
	}
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("caller %v: %v", k, v); return true })
	for c := range callers {
		readBack(t, vf, a, int64(c*a), block(a, a, byte(c)))
	}
}

// TestLinkedSyncCancelledOnWriteError: a WRITE to a read-only fd fails with
// EBADF; the linked FSYNC must not run (-ECANCELED) and WriteAt must return
// the write's error.
func TestLinkedSyncCancelledOnWriteError(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	create(t, f, "ro", int64(a)).Close()
	vf, err := f.Open("ro", true)
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	p := block(a, a, 1)
	res, err := vf.(*file).write(p, 0, vfs.Fdatasync)
	if err != nil {
		t.Fatal(err)
	}
	if res[0] != -int32(syscall.EBADF) || res[1] != -int32(syscall.ECANCELED) {
		t.Fatalf("CQEs = %d, %d; want -EBADF, -ECANCELED", res[0], res[1])
	}
	err = vf.WriteAt(p, 0, vfs.Fdatasync)
	var pe *os.PathError
	if !errors.Is(err, syscall.EBADF) || !errors.As(err, &pe) || !strings.Contains(err.Error(), "ro") {
		t.Fatalf("WriteAt on a read-only file = %v; want a *os.PathError wrapping EBADF", err)
	}
	if errors.Is(err, syscall.ECANCELED) {
		t.Fatalf("WriteAt returned the sync's cancellation, not the write's error: %v", err)
	}
}

// TestShortWriteCancelsSync makes the kernel complete a write short
// (RLIMIT_FSIZE cuts it at the limit): the linked sync is cancelled and
// WriteAt wraps ErrShortWrite, never success, and the reason the rest
// cannot be written (EFBIG here; ENOSPC on a full disk).
func TestShortWriteCancelsSync(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	vf := create(t, f, "short", 0)
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limit := uint64(3 * a)
	if old.Cur < limit {
		t.Skipf("RLIMIT_FSIZE already %d", old.Cur)
	}
	// NB: process-wide; this test is not parallel and restores it at once.
	// Go ignores SIGXFSZ, so writes at the limit return EFBIG.
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	p := block(4*a, a, 5)
	res, rerr := vf.(*file).write(p, 0, vfs.Fdatasync)
	serr := vf.WriteAt(p, 0, vfs.Fdatasync)          // short again, then EFBIG for the rest
	werr := vf.WriteAt(p, int64(4*a), vfs.Fdatasync) // starts past the limit: EFBIG
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	if res[0] != int32(limit) || res[1] != -int32(syscall.ECANCELED) {
		t.Fatalf("CQEs = %d, %d; want %d (short), -ECANCELED", res[0], res[1], limit)
	}
	if err := vf.(*file).writeErr(res, len(p), 0, vfs.Fdatasync); !errors.Is(err, vfs.ErrShortWrite) {
		t.Fatalf("short write maps to %v; want ErrShortWrite", err)
	}
	if !errors.Is(serr, vfs.ErrShortWrite) || !errors.Is(serr, syscall.EFBIG) {
		t.Fatalf("WriteAt cut short by RLIMIT_FSIZE = %v; want ErrShortWrite and the rest's EFBIG", serr)
	}
	if !errors.Is(werr, syscall.EFBIG) {
		t.Fatalf("WriteAt past RLIMIT_FSIZE = %v; want EFBIG", werr)
	}
}

func TestErrorMapping(t *testing.T) {
	vf := &file{path: "/wal/000001.log", align: 4096}
	err := vf.writeErr([2]int32{-int32(syscall.ENOSPC), -int32(syscall.ECANCELED)}, 4096, 8192, vfs.Fdatasync)
	var pe *os.PathError
	if !errors.Is(err, vfs.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &pe) || pe.Path != vf.path {
		t.Errorf("ENOSPC write maps to %v", err)
	}
	err = vf.writeErr([2]int32{4096, -int32(syscall.EIO)}, 4096, 0, vfs.Fdatasync)
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "fdatasync") {
		t.Errorf("EIO fdatasync maps to %v", err)
	}
	err = vf.writeErr([2]int32{512, -int32(syscall.ECANCELED)}, 4096, 0, vfs.Fdatasync)
	if !errors.Is(err, vfs.ErrShortWrite) || errors.Is(err, syscall.ECANCELED) {
		t.Errorf("short write maps to %v", err)
	}
	if err := vf.writeErr([2]int32{4096, 0}, 4096, 0, vfs.Fdatasync); err != nil {
		t.Errorf("success maps to %v", err)
	}
	if err := vf.writeErr([2]int32{4096, -int32(syscall.EIO)}, 4096, 0, vfs.DSync); err != nil {
		t.Errorf("DSYNC ignores the (absent) second CQE, got %v", err)
	}
	for errno, word := range map[syscall.Errno]string{
		syscall.EPERM:  "seccomp or kernel.io_uring_disabled",
		syscall.ENOSYS: "kernel before 5.6",
	} {
		if err := setupError(errno); !errors.Is(err, errno) || !strings.Contains(err.Error(), word) {
			t.Errorf("setupError(%v) = %v", errno, err)
		}
	}
}

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	if err := Probe(dir); err != nil {
		if errors.Is(err, vfs.ErrUnsupported) {
			t.Skipf("unsupported: %v", err)
		}
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("Probe left %s behind", e.Name())
	}
	if err := Probe(dir + "/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Probe(missing) = %v; want fs.ErrNotExist", err)
	}
}

func TestClosed(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	vf := create(t, f, "c", int64(a))
	if err := vf.Close(); err != nil {
		t.Fatal(err)
	}
	p := block(a, a, 1)
	if err := vf.WriteAt(p, 0, vfs.Fdatasync); !errors.Is(err, os.ErrClosed) {
		t.Errorf("WriteAt after Close = %v", err)
	}
	if _, err := vf.ReadAt(p, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("ReadAt after Close = %v", err)
	}
	if err := vf.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if _, err := f.Create("c", 0); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create of an existing file = %v; want fs.ErrExist", err)
	}
	if _, err := f.Open("nope", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file = %v; want fs.ErrNotExist", err)
	}
	// A file still open when its FS closes fails cleanly afterwards.
	vf2, err := f.Open("c", false)
	if err != nil {
		t.Fatal(err)
	}
	defer vf2.Close()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vf2.WriteAt(p, 0, vfs.NoSync); !errors.Is(err, os.ErrClosed) {
		t.Errorf("WriteAt after FS.Close = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second FS.Close = %v", err)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// settle waits for goroutines of earlier tests to exit.
func settle(want int) int {
	n := runtime.NumGoroutine()
	for i := 0; i < 100 && n > want; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

func TestNoLeak(t *testing.T) {
	dir := t.TempDir()
	if err := Probe(dir); err != nil {
		t.Skipf("unsupported: %v", err)
	}
	a, _ := align.Discover(dir)
	p := block(a, a, 7)
	fds0, gs0 := countFDs(t), runtime.NumGoroutine()
	for i := range 200 {
		f, err := New(dir, vfs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%06d.log", i)
		vf, err := f.Create(name, int64(2*a))
		if err != nil {
			t.Fatal(err)
		}
		if err := vf.WriteAt(p, 0, vfs.NoSync); err != nil {
			t.Fatal(err)
		}
		ro, err := f.Open(name, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ro.ReadAt(align.Alloc(a, a), 0); err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(ro.Close(), vf.Close(), f.Remove(name), f.Close()); err != nil {
			t.Fatal(err)
		}
	}
	if fds1, gs1 := countFDs(t), settle(gs0); fds1 != fds0 || gs1 != gs0 {
		t.Fatalf("after 200 FS cycles: fds %d -> %d, goroutines %d -> %d", fds0, fds1, gs0, gs1)
	}
}

func TestZeroAllocs(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	vf := create(t, f, "allocs", 64*int64(a))
	p := block(a, a, 1)
	for _, mode := range []vfs.SyncMode{vfs.NoSync, vfs.Fdatasync, vfs.DSync} {
		off := int64(0)
		allocs := testing.AllocsPerRun(50, func() {
			if err := vf.WriteAt(p, off, mode); err != nil {
				t.Fatal(err)
			}
			off = (off + int64(a)) % (64 * int64(a))
		})
		if allocs != 0 {
			t.Errorf("WriteAt(%v): %.1f allocations per op; want 0", mode, allocs)
		}
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := vf.ReadAt(p, 0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadAt: %.1f allocations per op; want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(20, func() { vf.Sync() }); allocs != 0 {
		t.Errorf("Sync: %.1f allocations per op; want 0", allocs)
	}
}

// pipeRead starts a 1-byte IORING_OP_READ of a pipe through f's ring: it
// stays in flight until the pipe is written. It returns the pipe's write end
// and a channel that delivers the read's cqe.res.
func pipeRead(t *testing.T, f *FS) (wfd int, res <-chan int32) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	ch := make(chan int32, 1)
	go func() {
		buf := make([]byte, 1)
		o := op{n: 1, buf: buf}
		o.sqe[0] = sqeSpec{opcode: iouring_syscall.IORING_OP_READ, fd: int32(p[0]),
			addr: uint64(uintptr(unsafe.Pointer(&buf[0]))), len: 1}
		r, err := f.ring.run(&o)
		if err != nil {
			r[0] = -1 << 30
		}
		ch <- r[0]
	}()
	// Wait until the read is queued in the ring.
	for deadline := time.Now().Add(5 * time.Second); ; {
		f.ring.mu.Lock()
		queued := 0
		for i := range f.ring.slots {
			if f.ring.slots[i].state == slotQueued {
				queued++
			}
		}
		f.ring.mu.Unlock()
		if queued > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pipe read never queued")
		}
		time.Sleep(time.Millisecond)
	}
	return p[1], ch
}

// TestOpsOverlapInKernel: while one operation is stuck in the kernel (a pipe
// read that has no data), WriteAt calls from other goroutines complete; the
// stuck one completes when its data comes.
func TestOpsOverlapInKernel(t *testing.T) {
	f := newFS(t)
	a := f.Alignment()
	vf := create(t, f, "overlap", 8*int64(a))
	wfd, res := pipeRead(t, f)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				if err := vf.WriteAt(block(a, a, byte(g)), int64((g*2+i%2)*a), vfs.SyncMode(i%3)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("writes did not complete while another operation was in flight")
	}
	select {
	case r := <-res:
		t.Fatalf("pipe read completed before the pipe was written: %d", r)
	default:
	}
	if _, err := unix.Write(wfd, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r != 1 {
		t.Fatalf("pipe read = %d, want 1", r)
	}
}

// TestFSCloseWaitsForInFlight: FS.Close returns only after the operations
// in flight have completed.
func TestFSCloseWaitsForInFlight(t *testing.T) {
	dir := t.TempDir()
	if err := Probe(dir); err != nil {
		t.Skipf("unsupported: %v", err)
	}
	f, err := New(dir, vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wfd, res := pipeRead(t, f)
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("FS.Close returned with an operation in flight: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := unix.Write(wfd, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r != 1 {
		t.Fatalf("pipe read = %d, want 1", r)
	}
	if err := <-closed; err != nil {
		t.Fatalf("FS.Close: %v", err)
	}
}

// TestProbeRamfs: on a file system that refuses O_DIRECT, Probe and New say
// so, wrapping vfs.ErrUnsupported, and leave no file behind. Needs root to
// mount a ramfs; skipped otherwise.
func TestProbeRamfs(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("ramfs", dir, "ramfs", 0, ""); err != nil {
		t.Skipf("cannot mount a ramfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	err := Probe(dir)
	if !errors.Is(err, vfs.ErrUnsupported) || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "O_DIRECT") {
		t.Fatalf("Probe(ramfs) = %v; want ErrUnsupported naming O_DIRECT and EINVAL", err)
	}
	if _, err := New(dir, vfs.Options{}); !errors.Is(err, vfs.ErrUnsupported) {
		t.Fatalf("New(ramfs) = %v; want ErrUnsupported", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left %s behind", e.Name())
	}
}

// Blocks are initialised before use on a disk file system and not on tmpfs
// (no unwritten extents there to convert): the decision is the directory's.
func TestInitBlocksPerDirectory(t *testing.T) {
	f := newFS(t)
	var st unix.Statfs_t
	if err := unix.Statfs(f.d.Path(), &st); err != nil {
		t.Fatal(err)
	}
	if want := st.Type != unix.TMPFS_MAGIC; f.InitBlocks() != want {
		t.Errorf("InitBlocks() = %t in %s (statfs type %#x), want %t", f.InitBlocks(), f.d.Path(), st.Type, want)
	}
	if unix.Statfs("/dev/shm", &st) != nil || st.Type != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm to check the other side")
	}
	dir, err := os.MkdirTemp("/dev/shm", "dwal-initblocks-*")
	if err != nil {
		t.Skipf("cannot use /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	shm, err := New(dir, vfs.Options{})
	if errors.Is(err, vfs.ErrUnsupported) {
		t.Skipf("io_uring backend does not run on tmpfs here (Linux before 6.6?): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer shm.Close()
	if shm.InitBlocks() {
		t.Error("InitBlocks() = true on tmpfs: its fallocated pages need no conversion, zeroing them doubles the writes")
	}
}
