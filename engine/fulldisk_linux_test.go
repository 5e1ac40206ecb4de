package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Running out of space on real file systems: a small file system is filled
// through a Coordinator until writes fail; every acknowledged entry must
// survive a clean close, an unmount and a mount, no failed batch may ever
// replay, and once space is freed the Coordinator writes again.

// diskCase is one small file system to fill.
type diskCase struct {
	fstype    string
	imageSize int64    // bytes of the loop image; 0: no device (tmpfs)
	mkfs      []string // command and options; the device is appended
	mountData string
	leave     int64 // when > 0, a ballast file leaves about this much free (a quicker fill)
	segSize   int64 // Config.SegmentSize
	entrySize int   // payload bytes per entry (4 entries per batch)
}

func TestFullDiskLoopExt4(t *testing.T) {
	fullDisk(t, diskCase{fstype: "ext4", imageSize: 64 << 20, leave: 32 << 20,
		mkfs: []string{"mkfs.ext4", "-q", "-F"}, segSize: 4 << 20, entrySize: 60 << 10})
}

// ext4 without the extent feature has no fallocate (EOPNOTSUPP): segments
// are then sized with ftruncate, sparse, and the file system runs out of
// blocks in the middle of a batch's write, not when a segment is prepared.
func TestFullDiskLoopExt4NoExtents(t *testing.T) {
	fullDisk(t, diskCase{fstype: "ext4", imageSize: 64 << 20, leave: 32 << 20,
		mkfs: []string{"mkfs.ext4", "-q", "-F", "-O", "^extent,^64bit,^flex_bg"}, segSize: 4 << 20, entrySize: 60 << 10})
}

func TestFullDiskLoopXfs(t *testing.T) {
	// mkfs.xfs >= 5.19 refuses file systems under 300 MiB.
	fullDisk(t, diskCase{fstype: "xfs", imageSize: 320 << 20, leave: 48 << 20,
		mkfs: []string{"mkfs.xfs", "-q", "-f"}, segSize: 4 << 20, entrySize: 60 << 10})
}

func TestFullDiskTmpfs(t *testing.T) {
	fullDisk(t, diskCase{fstype: "tmpfs", mountData: "size=16m", segSize: 2 << 20, entrySize: 30 << 10})
}

func fullDisk(t *testing.T, dc diskCase) {
	needRoot(t)
	uringWorks := probeUring(t.TempDir()) == nil
	for _, kind := range []BackendKind{BackendAuto, BackendFallback} {
		t.Run(kind.String(), func(t *testing.T) {
			start := time.Now()
			source, mnt := mountFresh(t, dc)
			want := "fallback"
			if kind == BackendAuto && uringWorks && (dc.fstype != "tmpfs" || kernelAtLeast(6, 6)) {
				want = "io_uring"
			}
			fillAndCheck(t, dc, kind, want, source, mnt)
			t.Logf("%s/%s: %v", dc.fstype, kind, time.Since(start).Round(time.Millisecond))
		})
	}
}

// mountFresh makes and mounts a new file system for dc; it returns the
// mount source (the loop device) and the mount point. Everything is undone
// in t.Cleanup.
func mountFresh(t *testing.T, dc diskCase) (source, mnt string) {
	t.Helper()
	mnt = t.TempDir()
	if dc.imageSize == 0 {
		mountT(t, "dwal-test-"+dc.fstype, mnt, dc.fstype, dc.mountData)
		return "dwal-test-" + dc.fstype, mnt
	}
	needCmd(t, dc.mkfs[0])
	dev := loopDevice(t, fullImage(t, dc.imageSize))
	args := append(append([]string(nil), dc.mkfs[1:]...), dev)
	if out, err := runCmd(dc.mkfs[0], args...); err != nil {
		t.Skipf("%s %s: %v\n%s", dc.mkfs[0], strings.Join(args, " "), err, out)
	}
	mountT(t, dev, mnt, dc.fstype, dc.mountData)
	if dc.leave > 0 {
		ballast(t, filepath.Join(mnt, "ballast"), freeBytes(mnt)-dc.leave)
	}
	return dev, mnt
}

// ballast takes n bytes of the file system with a file outside the WAL
// directory (fallocated, or written where fallocate is not supported).
func ballast(t *testing.T, path string, n int64) {
	t.Helper()
	if n <= 0 {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = unix.Fallocate(int(f.Fd()), 0, 0, n)
	if errors.Is(err, unix.EOPNOTSUPP) {
		err = nil
		zeros := make([]byte, 1<<20)
		for off := int64(0); off < n && err == nil; off += int64(len(zeros)) {
			_, err = f.WriteAt(zeros[:min(int64(len(zeros)), n-off)], off)
		}
		if err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		t.Fatalf("ballast of %d bytes: %v", n, err)
	}
}

// fillState is what a fill has written: LSNs are given in order and a
// failed batch is retried with the same LSNs and new bytes (its attempt
// number is in them), so the acknowledged LSNs are 1..next-1 and a failed
// attempt's bytes must never come back.
type fillState struct {
	dc       diskCase
	next     LSN
	attempt  int            // attempt number of the batch at next
	acked    map[LSN]int    // LSN -> the attempt that was acknowledged
	errs     map[string]int // kind of failure -> count
	firstErr map[string]string
	readOnly bool
	batches  int
}

func fillPayload(lsn LSN, attempt, n int) []byte {
	b := bytes.Repeat([]byte{byte(int(lsn)*7 + attempt*101)}, n)
	copy(b, fmt.Sprintf("lsn=%d attempt=%d ", lsn, attempt))
	return b
}

// flushNext writes the 4 entries at st.next as one batch (synced, except
// every fifth) and records the outcome.
func (st *fillState) flushNext(t *testing.T, c *Coordinator) error {
	t.Helper()
	var es []*PendingEntry
	first, done := NewSyncEntry(st.next, fillPayload(st.next, st.attempt, st.dc.entrySize))
	es = append(es, first)
	for i := LSN(1); i < 4; i++ {
		es = append(es, NewAsyncEntry(st.next+i, fillPayload(st.next+i, st.attempt, st.dc.entrySize)))
	}
	st.batches++
	_, err := c.Flush(es, st.batches%5 != 0)
	if werr := done.Wait(); (werr == nil) != (err == nil) {
		t.Fatalf("Flush returned %v but the completion was told %v", err, werr)
	}
	if err == nil {
		for i := LSN(0); i < 4; i++ {
			st.acked[st.next+i] = st.attempt
		}
		st.next += 4
		st.attempt = 0
		return nil
	}
	st.attempt++
	kind := ""
	switch {
	case errors.Is(err, ErrReadOnly):
		kind = "read-only"
		st.readOnly = true
	case errors.Is(err, ErrNoSpace) && strings.Contains(err.Error(), "prepare segment"):
		kind = "no space preparing a segment"
	case errors.Is(err, ErrNoSpace) && strings.Contains(err.Error(), "write of LSN"):
		kind = "no space writing a batch"
	case errors.Is(err, ErrNoSpace):
		kind = "no space (other)"
	case strings.Contains(err.Error(), "write of LSN"):
		kind = "write or sync failure"
	default:
		t.Errorf("Flush at LSN %d failed with an error that is neither ErrNoSpace nor a sync failure: %v", st.next, err)
		kind = "unexpected"
	}
	st.errs[kind]++
	if _, ok := st.firstErr[kind]; !ok {
		st.firstErr[kind] = err.Error()
	}
	return err
}

// fill flushes until three batches in a row fail or the Coordinator turns
// read-only. It fails t if the file system never fills.
func (st *fillState) fill(t *testing.T, c *Coordinator, limit int64) {
	t.Helper()
	fails := 0
	for written := int64(0); fails < 3 && !st.readOnly; {
		if written > limit {
			t.Fatalf("wrote %d bytes to a file system of %d without running out of space", written, limit)
		}
		if st.flushNext(t, c) != nil {
			fails++
			continue
		}
		fails = 0
		written += 4 * int64(st.dc.entrySize)
	}
}

func (st *fillState) report() string {
	var b strings.Builder
	for k, n := range st.errs {
		fmt.Fprintf(&b, "\n  %d x %s, first: %s", n, k, st.firstErr[k])
	}
	return b.String()
}

// checkReplay replays c and checks it is exactly the acknowledged LSNs from
// some LSN <= from (truncation removes whole segments) to the last one
// acknowledged, each with the bytes of its acknowledged attempt.
func (st *fillState) checkReplay(t *testing.T, c *Coordinator, from LSN) {
	t.Helper()
	var first, prev LSN
	n := 0
	err := c.Replay(0, func(l LSN, b []byte) error {
		if n == 0 {
			first = l
		} else if l != prev+1 {
			return fmt.Errorf("LSN %d replayed after %d: not contiguous", l, prev)
		}
		a, ok := st.acked[l]
		if !ok {
			return fmt.Errorf("LSN %d replayed but never acknowledged (bytes %.30q)", l, b)
		}
		if !bytes.Equal(b, fillPayload(l, a, st.dc.entrySize)) {
			return fmt.Errorf("LSN %d replayed with other bytes (%.30q) than its acknowledged attempt %d", l, b, a)
		}
		prev = l
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if n == 0 {
		t.Fatal("nothing replayed")
	}
	if first > from || prev != st.next-1 {
		t.Fatalf("replayed LSN %d..%d, want from at most %d to %d (every acknowledged one)", first, prev, from, st.next-1)
	}
}

// freeSegments removes the three oldest sealed segments with TruncateToLSN
// and returns the truncation LSN.
func freeSegments(t *testing.T, c *Coordinator) LSN {
	t.Helper()
	segs := c.Segments()
	if len(segs) < 4 {
		t.Fatalf("only %d sealed segments to free", len(segs))
	}
	x := segs[2].Meta.MaxLSN + 1
	removed, err := c.TruncateToLSN(x)
	if err != nil || removed < 3 {
		t.Fatalf("TruncateToLSN(%d): removed %d, %v", x, removed, err)
	}
	return x
}

func fillAndCheck(t *testing.T, dc diskCase, kind BackendKind, wantBackend, source, mnt string) {
	dir := filepath.Join(mnt, "wal")
	cfg := Config{Dir: dir, Backend: kind, SegmentSize: dc.segSize, SegmentsToRetain: 100000}
	limit := 3 * max(dc.imageSize, 64<<20)
	c := openT(t, cfg)
	if got := c.Backend().Name; got != wantBackend {
		t.Fatalf("Backend %q (%s) on %s, want %q", got, c.Backend().Reason, dc.fstype, wantBackend)
	}
	t.Logf("%s on %s (%s), %d MiB free", c.Backend().Name, fsName(dir), source, freeBytes(dir)>>20)
	st := &fillState{dc: dc, next: 1, acked: map[LSN]int{}, errs: map[string]int{}, firstErr: map[string]string{}}

	// 1. Fill it.
	st.fill(t, c, limit)
	if len(st.acked) == 0 || len(st.errs) == 0 {
		t.Fatalf("acknowledged %d entries, %d failures", len(st.acked), len(st.errs))
	}
	t.Logf("full after %d batches: %d entries acknowledged, %d KiB free, read-only %t:%s",
		st.batches, len(st.acked), freeBytes(dir)>>10, st.readOnly, st.report())
	direct := c.Backend().Name == "io_uring"
	if direct && st.readOnly {
		t.Errorf("io_uring + O_DIRECT turned read-only on a full disk (ENOSPC must be recoverable there)")
	}

	// 2. Without reopening: free space, and the Coordinator writes again.
	truncated := LSN(1)
	if !st.readOnly {
		truncated = freeSegments(t, c)
		if err := st.flushNext(t, c); err != nil {
			t.Fatalf("Flush after freeing 3 segments: %v", err)
		}
		t.Logf("writable again after TruncateToLSN(%d) (%d KiB free); filling again", truncated, freeBytes(dir)>>10)
		st.fill(t, c, limit)
		t.Logf("full again after %d batches: %d entries acknowledged, %d KiB free, read-only %t",
			st.batches, len(st.acked), freeBytes(dir)>>10, st.readOnly)
		st.checkReplay(t, c, truncated)
	}
	if err := c.Close(); err != nil {
		t.Logf("Close on a full file system: %v", err)
	}

	// 3. Remount and reopen: everything acknowledged, nothing failed.
	if dc.imageSize != 0 {
		remount(t, source, mnt, dc.fstype, dc.mountData)
	}
	c, err := Open(cfg)
	if err != nil {
		t.Fatalf("reopen on the full file system: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	t.Logf("reopened: %d KiB free; recovery: %s", freeBytes(dir)>>10, strings.Join(c.Recovery().Repairs, "; "))
	st.checkReplay(t, c, truncated)

	// 4. The reopened Coordinator writes once space is freed (freed first:
	// a buffered backend turns read-only again if a write hits ENOSPC).
	truncated = freeSegments(t, c)
	for range 3 {
		if err := st.flushNext(t, c); err != nil {
			t.Fatalf("Flush after reopening and freeing 3 segments: %v", err)
		}
	}
	st.checkReplay(t, c, truncated)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	c = openT(t, cfg)
	st.checkReplay(t, c, truncated)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// kernelAtLeast reports whether the running kernel is major.minor or later.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	parts := strings.SplitN(unix.ByteSliceToString(u.Release[:]), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
