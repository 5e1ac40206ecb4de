package peers

import (
	"path/filepath"
	"sync/atomic"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/dwal-project/dwal/bench"
)

// etcdDefaultSegment is wal.SegmentSizeBytes as etcd ships it.
const etcdDefaultSegment = 64 * 1000 * 1000

type etcdSystem struct{}

func (etcdSystem) Name() string { return "etcd" }

func etcdDir(cfg bench.Config) string { return filepath.Join(cfg.Dir, "member", "wal") }

// etcdSegmentSize sets etcd's segment size for cfg. NB: a package
// variable in etcd; the subprocess runs one cell at a time.
func etcdSegmentSize(cfg bench.Config) {
	wal.SegmentSizeBytes = etcdDefaultSegment
	if cfg.SegmentSize > 0 {
		wal.SegmentSizeBytes = cfg.SegmentSize
	}
}

func (etcdSystem) Open(cfg bench.Config) (bench.Log, error) {
	etcdSegmentSize(cfg)
	w, err := wal.Create(zap.NewNop(), etcdDir(cfg), nil)
	if err != nil {
		return nil, err
	}
	return newEtcdLog(w, etcdDir(cfg), 0), nil
}

// Reopen opens the WAL as etcd does when it restarts: wal.Open, then
// ReadAll (which it must before appending), and goes on after the last
// entry.
func (etcdSystem) Reopen(cfg bench.Config) (bench.Log, error) {
	etcdSegmentSize(cfg)
	w, err := wal.Open(zap.NewNop(), etcdDir(cfg), walpb.Snapshot{})
	if err != nil {
		return nil, err
	}
	_, st, ents, err := w.ReadAll()
	if err != nil {
		w.Close()
		return nil, err
	}
	last := st.Commit
	if n := len(ents); n > 0 {
		last = max(last, ents[n-1].Index)
	}
	return newEtcdLog(w, etcdDir(cfg), last), nil
}

func newEtcdLog(w *wal.WAL, dir string, index uint64) *etcdLog {
	l := &etcdLog{w: w, dir: dir, index: index}
	l.funnel = bench.NewFunnel(l.save, 0, funnelBytes)
	return l
}

type etcdLog struct {
	w      *wal.WAL
	dir    string
	funnel *bench.Funnel
	index  uint64
	ents   []raftpb.Entry
	syncs  atomic.Uint64
}

// save is the raft node's storage.Save(rd.HardState, rd.Entries): the
// batch's entries with consecutive indexes, and the hard state.
func (l *etcdLog) save(data [][]byte) error {
	l.ents = l.ents[:0]
	for _, d := range data {
		l.index++
		l.ents = append(l.ents, raftpb.Entry{Term: 1, Index: l.index, Type: raftpb.EntryNormal, Data: d})
	}
	err := l.w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: l.index}, l.ents)
	clear(l.ents)
	if err == nil {
		l.syncs.Add(1)
	}
	return err
}

func (l *etcdLog) Commit(_ uint64, data []byte) error { return l.funnel.Commit(data) }

func (l *etcdLog) Flush(_ uint64, entries [][]byte) error { return l.save(entries) }

func (l *etcdLog) Syncs() uint64 { return l.syncs.Load() }

func (l *etcdLog) Rotations() int { return max(bench.CountFiles(l.dir, "*.wal")-1, 0) }

func (l *etcdLog) Close() error {
	l.funnel.Close()
	return l.w.Close()
}

// Replay opens the WAL as etcd does at start-up and reads it all.
func (etcdSystem) Replay(cfg bench.Config, fn func([]byte)) error {
	w, err := wal.Open(zap.NewNop(), etcdDir(cfg), walpb.Snapshot{})
	if err != nil {
		return err
	}
	_, _, ents, err := w.ReadAll()
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for i := range ents {
		fn(ents[i].Data)
	}
	return nil
}
