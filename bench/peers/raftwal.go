package peers

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/dwal-project/dwal/bench"
)

// raftMaxAppendEntries is hashicorp/raft's default MaxAppendEntries: its
// leader loop takes one log plus up to this many more per StoreLogs.
const raftMaxAppendEntries = 64

type raftwalSystem struct{}

func (raftwalSystem) Name() string { return "raftwal" }

func raftwalDir(cfg bench.Config) string { return filepath.Join(cfg.Dir, "raft") }

// raftwalOpen opens the WAL with its default meta store (BoltDB), which
// is passed in so that it can be closed: WAL.Close leaves it open, holding
// its file lock, and a second Open in the same process would wait forever.
func raftwalOpen(cfg bench.Config) (*wal.WAL, *metadb.BoltMetaDB, error) {
	if err := os.MkdirAll(raftwalDir(cfg), 0o755); err != nil {
		return nil, nil, err
	}
	meta := &metadb.BoltMetaDB{}
	var w *wal.WAL
	var err error
	if cfg.SegmentSize > 0 {
		w, err = wal.Open(raftwalDir(cfg), wal.WithMetaStore(meta), wal.WithSegmentSize(int(cfg.SegmentSize)))
	} else {
		w, err = wal.Open(raftwalDir(cfg), wal.WithMetaStore(meta))
	}
	if err != nil {
		meta.Close()
		return nil, nil, err
	}
	return w, meta, nil
}

func (raftwalSystem) Open(cfg bench.Config) (bench.Log, error) {
	w, meta, err := raftwalOpen(cfg)
	if err != nil {
		return nil, err
	}
	l := &raftwalLog{w: w, meta: meta, dir: raftwalDir(cfg)}
	l.funnel = bench.NewFunnel(l.save, 1+raftMaxAppendEntries, 0)
	return l, nil
}

// Reopen is wal.Open on the existing directory (which recovers its
// segments), and raft goes on after LastIndex.
func (s raftwalSystem) Reopen(cfg bench.Config) (bench.Log, error) {
	lg, err := s.Open(cfg)
	if err != nil {
		return nil, err
	}
	l := lg.(*raftwalLog)
	if l.index, err = l.w.LastIndex(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

type raftwalLog struct {
	w      *wal.WAL
	meta   *metadb.BoltMetaDB
	dir    string
	funnel *bench.Funnel
	index  uint64
	logs   []raft.Log
	ptrs   []*raft.Log
	syncs  atomic.Uint64
}

// save stores the batch as raft's leader does: logs with consecutive
// indexes, the current term, AppendedAt set, in one StoreLogs.
func (l *raftwalLog) save(data [][]byte) error {
	if cap(l.logs) < len(data) {
		l.logs = make([]raft.Log, len(data))
		l.ptrs = make([]*raft.Log, len(data))
	}
	logs, ptrs := l.logs[:len(data)], l.ptrs[:len(data)]
	now := time.Now()
	for i, d := range data {
		l.index++
		logs[i] = raft.Log{Index: l.index, Term: 1, Type: raft.LogCommand, Data: d, AppendedAt: now}
		ptrs[i] = &logs[i]
	}
	err := l.w.StoreLogs(ptrs)
	clear(logs)
	if err == nil {
		l.syncs.Add(1)
	}
	return err
}

func (l *raftwalLog) Commit(_ uint64, data []byte) error { return l.funnel.Commit(data) }

func (l *raftwalLog) Flush(_ uint64, entries [][]byte) error { return l.save(entries) }

func (l *raftwalLog) Syncs() uint64 { return l.syncs.Load() }

func (l *raftwalLog) Rotations() int { return max(bench.CountFiles(l.dir, "*.wal")-1, 0) }

func (l *raftwalLog) Close() error {
	l.funnel.Close()
	err := l.w.Close()
	if merr := l.meta.Close(); err == nil {
		err = merr
	}
	return err
}

// Replay opens the WAL (which recovers its segments) and reads every log
// with GetLog, as raft reads its log store.
func (raftwalSystem) Replay(cfg bench.Config, fn func([]byte)) error {
	w, meta, err := raftwalOpen(cfg)
	if err != nil {
		return err
	}
	defer meta.Close()
	defer w.Close()
	first, err := w.FirstIndex()
	if err != nil {
		return err
	}
	last, err := w.LastIndex()
	if err != nil {
		return err
	}
	var lg raft.Log
	for i := first; i <= last && last > 0; i++ {
		if err := w.GetLog(i, &lg); err != nil {
			return err
		}
		fn(lg.Data)
	}
	return nil
}
