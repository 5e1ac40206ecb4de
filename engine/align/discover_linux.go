package align

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func discover(dir string) (int, Source) {
	// NB: statx reports no DIO alignment for a directory (nor for tmpfs
	// files), so probe a real file in it.
	f, err := os.CreateTemp(dir, "align-probe-*.tmp")
	if err != nil {
		return Default, SourceDefault
	}
	name := f.Name()
	defer os.Remove(name)
	defer f.Close()
	var st unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st); err == nil &&
		st.Mask&unix.STATX_DIOALIGN != 0 && st.Dio_offset_align > 0 {
		a := int(max(st.Dio_offset_align, st.Dio_mem_align))
		return a, SourceStatx
	}
	if st.Dev_major != 0 || st.Dev_minor != 0 {
		p := filepath.Join("/sys/dev/block", fmt.Sprintf("%d:%d", st.Dev_major, st.Dev_minor), "queue/logical_block_size")
		if b, err := os.ReadFile(p); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
				return n, SourceBlock
			}
		}
	}
	return Default, SourceDefault
}
