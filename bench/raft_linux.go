package bench

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/dwal-project/dwal/engine/align"
	"golang.org/x/sys/unix"
)

// raftFloor is the Raft workload's floor: one write of 64 entries of 128 B
// (8 KiB) and an fdatasync into a pre-zeroed O_DIRECT file, serially: what
// a StoreLogs of 64 small entries cannot beat on this disk.
func raftFloor(o *Options, p *runParams, pr *progress) []Result {
	const batch, size = 64, 128
	pr.step("raft: floor %s", StoreLogsPhase(batch, size))
	res := Result{Workload: wlRaft, System: "floor", Phase: StoreLogsPhase(batch, size), Writers: 1, EntrySize: size, BatchEntries: batch, Process: "main"}
	const fileSize = 64 << 20
	f, a, err := OpenPreZeroed(filepath.Join(p.root, "raft-floor"), fileSize)
	if err != nil {
		res.Error = err.Error()
		return []Result{res}
	}
	defer f.Close()
	buf := align.Alloc(align.Up(batch*size, a), a)
	for i := range buf {
		buf[i] = byte(i)
	}
	rec := NewRecorder()
	var ops int64
	start := time.Now()
	for off := int64(0); time.Since(start) < o.Duration; ops++ {
		t0 := time.Now()
		if _, err := unix.Pwrite(int(f.Fd()), buf, off); err != nil {
			res.Error = fmt.Sprintf("pwrite: %v", err)
			return []Result{res}
		}
		if err := fdatasync(f); err != nil {
			res.Error = fmt.Sprintf("fdatasync: %v", err)
			return []Result{res}
		}
		rec.Record(0, time.Since(t0))
		if off += int64(len(buf)); off+int64(len(buf)) > fileSize {
			off = 0
		}
	}
	r := RaftResult("floor", res.Phase, 1, size, batch, ops, time.Since(start), rec)
	r.Process = "main"
	return []Result{r}
}
