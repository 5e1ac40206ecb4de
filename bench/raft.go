package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The Raft workload (--workloads raft): hashicorp/raft's log stores side
// by side on this directory's disk, in the peers' process (bench/peers),
// where raft-wal and raft-boltdb live; dwal's raftstore runs there too, so
// every store has the same process, disk and raft. bench/peers sets
// RaftBench. Its cells:
//
//   - StoreLogs latency, serial as raft's leader loop calls it, batches of
//     1 and 64 entries of 128 B and 4 KiB;
//   - GetLog throughput, random over the log and of the batch just
//     written (what a leader sends its followers); dwal with its own cache
//     and, beside it, without it under raft.NewLogCache;
//   - a 3-node cluster in this process applying 128-byte commands from
//     64 clients: commands/s and p50/p99 apply latency per store, with the
//     nodes over raft.NewInmemTransport and, in a cell of its own, over
//     raft.NewTCPTransport on 127.0.0.1 (as separate processes talk).
//     The report judges raftstore's commands/s against raft-wal's (>= 2x)
//     and raft-boltdb's (>= 3x) in each.
//
// The main process adds the floor: one 64x128 B write + fdatasync into a
// pre-zeroed O_DIRECT file, serially (raftFloor).

// RaftParams is what the Raft workload is given.
type RaftParams struct {
	Root     string        // a fresh directory on the disk measured
	Duration time.Duration // of each cell
	Quick    bool
	Step     func(format string, args ...any) // progress
}

// RaftBench runs the Raft workload; bench/peers sets it in its binary.
var RaftBench func(RaftParams) []Result

// raftPeer names the peers' process for the Raft workload when no peer is
// among --systems (any peer name: the child runs only the raft stores).
const raftPeer = "raftwal"

// runRaftChild runs the Raft workload in the peers' process.
func runRaftChild(o *Options, pr *progress) []Result {
	if RaftBench == nil {
		return []Result{{Workload: wlRaft, System: "raft", Process: "peers", Skipped: "this binary has no raft stores"}}
	}
	root := filepath.Join(o.Dir, "raft")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return []Result{{Workload: wlRaft, System: "raft", Process: "peers", Error: err.Error()}}
	}
	if !o.Keep {
		defer os.RemoveAll(root)
	}
	return RaftBench(RaftParams{Root: root, Duration: o.Duration, Quick: o.Quick, Step: pr.step})
}

// Recorder records latencies for a Result (safe for concurrent use; w
// spreads writers over shards).
type Recorder struct{ l *latencies }

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{l: newLatencies()} }

// Record adds one latency observed by writer w.
func (r *Recorder) Record(w int, d time.Duration) { r.l.record(w, d.Nanoseconds()) }

// RaftResult is one cell of the Raft workload: ops (each of perOp entries
// of entrySize bytes) over d, with their latencies.
func RaftResult(system, phase string, writers, entrySize, perOp int, ops int64, d time.Duration, r *Recorder) Result {
	res := Result{Workload: wlRaft, System: system, Phase: phase, Writers: writers, EntrySize: entrySize, BatchEntries: perOp,
		Process: "peers", DurationS: d.Seconds(), Ops: ops, Entries: ops * int64(perOp)}
	res.Bytes = res.Entries * int64(entrySize)
	if d > 0 {
		res.EntriesPerS = float64(res.Entries) / d.Seconds()
		res.MBPerS = float64(res.Bytes) / 1e6 / d.Seconds()
	}
	if r != nil {
		res.Latency = summarise(r.l.merged())
	}
	return res
}

// StoreLogsPhase names a StoreLogs cell.
func StoreLogsPhase(batch, size int) string { return fmt.Sprintf("StoreLogs %dx%dB", batch, size) }
