package peers

import (
	"path/filepath"
	"sync/atomic"

	"github.com/tidwall/wal"

	"github.com/dwal-project/dwal/bench"
)

type tidwallSystem struct{}

func (tidwallSystem) Name() string { return "tidwall" }

func tidwallOptions(cfg bench.Config) *wal.Options {
	o := *wal.DefaultOptions // NoSync false: fsync after every write
	if cfg.SegmentSize > 0 {
		o.SegmentSize = int(cfg.SegmentSize)
	}
	return &o
}

func tidwallDir(cfg bench.Config) string { return filepath.Join(cfg.Dir, "log") }

func (tidwallSystem) Open(cfg bench.Config) (bench.Log, error) {
	w, err := wal.Open(tidwallDir(cfg), tidwallOptions(cfg))
	if err != nil {
		return nil, err
	}
	l := &tidwallLog{w: w, dir: tidwallDir(cfg), single: cfg.Writers == 1}
	l.funnel = bench.NewFunnel(l.save, 0, funnelBytes)
	return l, nil
}

// Reopen is wal.Open on the existing log (which loads its segments), and
// writing goes on after LastIndex.
func (s tidwallSystem) Reopen(cfg bench.Config) (bench.Log, error) {
	lg, err := s.Open(cfg)
	if err != nil {
		return nil, err
	}
	l := lg.(*tidwallLog)
	if l.index, err = l.w.LastIndex(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

type tidwallLog struct {
	w      *wal.Log
	dir    string
	funnel *bench.Funnel
	single bool
	index  uint64
	batch  wal.Batch
	syncs  atomic.Uint64
}

// save writes the batch with consecutive indexes (tidwall/wal refuses
// others) in one WriteBatch, which syncs once.
func (l *tidwallLog) save(data [][]byte) error {
	l.batch.Clear()
	for _, d := range data {
		l.index++
		l.batch.Write(l.index, d)
	}
	err := l.w.WriteBatch(&l.batch)
	if err == nil {
		l.syncs.Add(1)
	}
	return err
}

// Commit: one writer alone calls Write, as tidwall/wal's README does; with
// several, their entries are funnelled into WriteBatch.
func (l *tidwallLog) Commit(_ uint64, data []byte) error {
	if !l.single {
		return l.funnel.Commit(data)
	}
	l.index++
	err := l.w.Write(l.index, data)
	if err == nil {
		l.syncs.Add(1)
	}
	return err
}

func (l *tidwallLog) Flush(_ uint64, entries [][]byte) error { return l.save(entries) }

func (l *tidwallLog) Syncs() uint64 { return l.syncs.Load() }

func (l *tidwallLog) Rotations() int { return max(bench.CountFiles(l.dir, "[0-9]*")-1, 0) }

func (l *tidwallLog) Close() error {
	l.funnel.Close()
	return l.w.Close()
}

// Replay opens the log and reads every index from first to last.
func (tidwallSystem) Replay(cfg bench.Config, fn func([]byte)) error {
	w, err := wal.Open(tidwallDir(cfg), tidwallOptions(cfg))
	if err != nil {
		return err
	}
	defer w.Close()
	first, err := w.FirstIndex()
	if err != nil {
		return err
	}
	last, err := w.LastIndex()
	if err != nil {
		return err
	}
	for i := first; i <= last && last > 0; i++ {
		b, err := w.Read(i)
		if err != nil {
			return err
		}
		fn(b)
	}
	return nil
}
