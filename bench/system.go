package bench

import (
	"io/fs"
	"os"
	"path/filepath"
)

// System is one log implementation under test. The harness measures every
// System with the same code (run.go, load.go), whether it runs in this process or in
// the peers' process (bench/peers), so the figures compare like with like.
type System interface {
	// Name is the system's name in tables, JSON and plots ("dwal-uring").
	Name() string
	// Open creates a log in cfg.Dir, which exists and is empty.
	Open(cfg Config) (Log, error)
}

// Log is an open log. Commit may be called by many goroutines at once; Flush
// by one goroutine at a time and never together with Commit.
type Log interface {
	// Commit appends one entry and returns once it is durable, driven the
	// way the system's own users drive concurrent durable writes. lsn grows
	// by one per entry across all writers; systems that number entries
	// themselves ignore it. data may be reused once Commit returns.
	Commit(lsn uint64, data []byte) error
	// Flush writes entries as one batch (first LSN lsn) and returns once
	// they are all durable.
	Flush(lsn uint64, entries [][]byte) error
	// Close makes everything written durable and releases the log.
	Close() error
}

// Config describes the log a System opens.
type Config struct {
	Dir       string
	Workload  string
	Writers   int
	EntrySize int // bytes per entry
	// SegmentSize is the segment (file) size to use; 0 means the system's
	// default.
	SegmentSize int64
	// KeepAll asks the system to keep every segment (no retention), so that
	// replay finds everything written.
	KeepAll bool
}

// Optional interfaces a System or a Log may implement.
type (
	// Supporter says whether a System runs a workload with that many
	// writers, and why not.
	Supporter interface {
		Supports(workload string, writers int) (ok bool, reason string)
	}
	// Replayer reads back everything written in cfg.Dir by a Log of the
	// System (now closed), opening the directory as the system's users do
	// at start-up, and calls fn for each entry in order.
	Replayer interface {
		Replay(cfg Config, fn func(data []byte)) error
	}
	// Reopener opens the log that a closed Log of the System left in
	// cfg.Dir, as its users do when their process restarts (recovery or
	// replay included), ready to append after what is there. The restart
	// workload runs only on Systems that implement it.
	Reopener interface {
		Reopen(cfg Config) (Log, error)
	}
	// Warmer is a Log that can be brought to its steady state after Open
	// (dwal: wait until its first segment is prepared). The harness calls
	// WarmUp on --warm cells only, right after Open; headline cells never
	// do: they write at once, as users do.
	Warmer interface{ WarmUp() error }
	// Syncer counts the durable batches (syncs) a Log made so far.
	Syncer interface{ Syncs() uint64 }
	// Rotator counts the segments a Log started since it was opened.
	Rotator interface{ Rotations() int }
	// Describer says how a Log runs (backend and why).
	Describer interface{ Describe() string }
)

// countFiles counts the files in dir whose names match pattern
// (filepath.Match), for adapters that report rotations by counting segments.
func countFiles(dir, pattern string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if ok, _ := filepath.Match(pattern, d.Name()); ok {
				n++
			}
		}
		return nil
	})
	return n
}

// CountFiles is countFiles for adapters in other packages.
func CountFiles(dir, pattern string) int { return countFiles(dir, pattern) }

// mkdirEmpty creates dir afresh.
func mkdirEmpty(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}
