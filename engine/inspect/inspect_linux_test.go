package inspect

import (
	"errors"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine"
)

// TestReadOnlyToolsCreateNothing: Inspect, Verify and Dump change nothing
// in the directory, not even for a moment (a probe file created and
// removed would not show in a before/after listing; inotify sees it).
func TestReadOnlyToolsCreateNothing(t *testing.T) {
	dir := inspectDir(t)
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer unix.Close(fd)
	const changes = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_MOVED_FROM |
		unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
	if _, err := unix.InotifyAddWatch(fd, dir, changes); err != nil {
		t.Fatal(err)
	}
	if _, err := Dir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
	if err := Dump(dir, DumpOptions{}, func(uint64, int64, uint64, engine.LSN, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	n, err := unix.Read(fd, buf)
	if errors.Is(err, unix.EAGAIN) {
		return // no event: nothing changed
	}
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		name := unix.ByteSliceToString(buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)])
		t.Errorf("the read-only tools changed the directory: event %#x on %q", ev.Mask, name)
		off += unix.SizeofInotifyEvent + int(ev.Len)
	}
}
