package bench

import (
	"slices"
)

// The result schema: the workloads by name and what one measured cell
// reports (the JSON of bench/results).

// Workloads.
const (
	wlCommit     = "commit"      // C writers, one entry each, durable on return
	wlLatency    = "latency"     // one writer, one 4 KiB entry per synced flush
	wlBulk       = "bulk"        // one writer, 1 MiB synced batches
	wlRotate     = "rotate"      // commit with small segments
	wlRotateNone = "rotate-none" // the same commit without rotation
	wlReplay     = "replay"      // read back what was written
	wlRestart    = "restart"     // open, commit N, close, reopen, commit N
)

// AllWorkloads lists the workloads in the order they run.
var AllWorkloads = []string{wlCommit, wlLatency, wlBulk, wlRotate, wlReplay, wlRestart}

// wlRaft is the Raft workload (raft.go): dwal's raftstore beside raft-wal
// and raft-boltdb under hashicorp/raft. It runs only when asked for
// (--workloads raft), in the peers' process, where the other stores live.
const wlRaft = "raft"

// KnownWorkloads are the workloads --workloads accepts (raft, scale and
// partitions only when named; raft and scale run in the peers' process).
var KnownWorkloads = append(slices.Clone(AllWorkloads), wlRaft, wlScale, wlPartitions)

// The phases of the restart workload.
const (
	phaseFirst    = "first open" // a fresh directory
	phaseReopened = "reopened"   // the same directory after Close, opened again
)

// Result is one measured cell: one system on one workload with one writer
// count. Latencies are per op (one commit, or one synced batch).
type Result struct {
	Workload     string  `json:"workload"`
	System       string  `json:"system"`
	Writers      int     `json:"writers"`
	EntrySize    int     `json:"entry_size"`
	BatchEntries int     `json:"batch_entries"` // entries per op
	RatePerS     float64 `json:"rate_per_s,omitempty"`
	SegmentSize  int64   `json:"segment_size,omitempty"`
	Backend      string  `json:"backend,omitempty"`
	Process      string  `json:"process"` // "main", or "peers" for the peers' subprocess
	// Warm marks a --warm cell: the steady state, measured beside the
	// headline cell of the same system and workload, which starts writing
	// right after Open with nothing unmeasured before it.
	Warm bool `json:"warm,omitempty"`
	// WarmedUp says the harness called the log's WarmUp after Open (dwal:
	// WaitPrepared); only --warm cells do.
	WarmedUp bool `json:"warmed_up,omitempty"`
	// Phase is the restart workload's phase (first open, reopened).
	Phase string `json:"phase,omitempty"`
	// OpenUS is how long Open (or Reopen) took, in µs.
	OpenUS float64 `json:"open_us,omitempty"`
	// The scale workload's: the log's size (bytes of dwal segments), the
	// first read's time after Open, the measuring process's maximum RSS,
	// and the bytes on disk per payload byte.
	LogBytes       int64   `json:"log_bytes,omitempty"`
	FirstReadUS    float64 `json:"first_read_us,omitempty"`
	MaxRSSBytes    int64   `json:"max_rss_bytes,omitempty"`
	DiskPerPayload float64 `json:"disk_per_payload,omitempty"`
	// The partitions workload's: bytes allocated on disk at the end of
	// the cell, and the goroutines and open files of the process beyond
	// the writers and what it had before Open.
	DiskBytes int64 `json:"disk_bytes,omitempty"`
	// DiskWritten: of them, the bytes the log wrote (a log's files hold
	// what it wrote plus what it preallocated).
	DiskWritten int64 `json:"disk_written,omitempty"`
	Goroutines  int   `json:"goroutines,omitempty"`
	OpenFiles   int   `json:"open_files,omitempty"`

	DurationS      float64 `json:"duration_s"`
	Ops            int64   `json:"ops"`
	Entries        int64   `json:"entries"`
	Bytes          int64   `json:"bytes"`
	EntriesPerS    float64 `json:"entries_per_s"`
	MBPerS         float64 `json:"mb_per_s"`
	Latency        Latency `json:"latency"`
	CPUPerEntryUS  float64 `json:"cpu_us_per_entry"`
	AllocsPerEntry float64 `json:"allocs_per_entry"`
	EntriesPerSync float64 `json:"entries_per_sync,omitempty"`
	Rotations      int     `json:"rotations"`
	WarmupBytes    int64   `json:"warmup_bytes"` // entry bytes written before the measured window (0 but in --warm cells)

	Error   string `json:"error,omitempty"`
	Skipped string `json:"skipped,omitempty"`
}
