package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/dwal-project/dwal/engine"
)

// dwalSystem is dwal with one backend: Commit is Coordinator.Append (group
// commit), Flush is the Card 1 Coordinator.Flush(entries, true).
type dwalSystem struct {
	name   string
	kind   engine.BackendKind
	aes    bool // Config.Cipher = AES-256-GCM (the cost of encryption)
	depth  int  // Config.GroupCommitDepth (0: the default)
	linked bool // Config.SyncMethod = SyncFdatasync (default: SyncDSync)
}

// DwalSystems returns dwal with each backend.
func DwalSystems() []System {
	return []System{
		&dwalSystem{name: "dwal-uring", kind: engine.BackendUring},
		&dwalSystem{name: "dwal-fallback", kind: engine.BackendFallback},
		&dwalSystem{name: "dwal-auto", kind: engine.BackendAuto},
		&dwalSystem{name: "dwal-uring-aes", kind: engine.BackendUring, aes: true},
		&dwalSystem{name: "dwal-uring-d1", kind: engine.BackendUring, depth: 1},
		&dwalSystem{name: "dwal-uring-linked", kind: engine.BackendUring, linked: true},
	}
}

func (s *dwalSystem) Name() string { return s.name }

func (s *dwalSystem) config(cfg Config) engine.Config {
	c := engine.DefaultConfig(cfg.Dir)
	c.Backend = s.kind
	if cfg.SegmentSize > 0 {
		c.SegmentSize = cfg.SegmentSize
	}
	if cfg.KeepAll {
		c.SegmentsToRetain = 1 << 30
	}
	c.GroupCommitDepth = s.depth
	if s.linked {
		c.SyncMethod = engine.SyncFdatasync
	}
	if s.aes {
		// A fixed key: the benchmark measures the cost, not secrecy.
		ciph, err := engine.NewAESGCM(make([]byte, 32))
		if err != nil {
			panic(err)
		}
		c.Cipher = ciph
	}
	return c
}

// Open is engine.Open, and the log takes writes at once, as a user's
// service does: nothing waits for the first segment's preparation here
// (see WarmUp).
func (s *dwalSystem) Open(cfg Config) (Log, error) {
	c, err := engine.Open(s.config(cfg))
	if err != nil {
		return nil, err
	}
	return &dwalLog{c: c, startSeg: c.CurrentSegmentID()}, nil
}

// Reopen is engine.Open on the directory a closed log left: recovery finds
// the end of the log and the next append goes after it.
func (s *dwalSystem) Reopen(cfg Config) (Log, error) { return s.Open(cfg) }

func (s *dwalSystem) Replay(cfg Config, fn func([]byte)) error {
	c, err := engine.Open(s.config(cfg))
	if err != nil {
		return err
	}
	err = c.Replay(0, func(_ engine.LSN, b []byte) error { fn(b); return nil })
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

type dwalLog struct {
	c        *engine.Coordinator
	startSeg uint64
	ents     []engine.PendingEntry // reused by Flush, as a service reuses its records
	pend     []*engine.PendingEntry
}

func (l *dwalLog) Commit(lsn uint64, data []byte) error {
	return l.c.Append(context.Background(), engine.LSN(lsn), data)
}

// Flush is Card 1's Flush of async entries (one writer calls it). The
// entries are reused from call to call: an async entry is plain data.
func (l *dwalLog) Flush(lsn uint64, entries [][]byte) error {
	if len(l.ents) < len(entries) {
		l.ents = make([]engine.PendingEntry, len(entries))
		l.pend = make([]*engine.PendingEntry, len(entries))
		for i := range l.ents {
			l.pend[i] = &l.ents[i]
		}
	}
	for i, e := range entries {
		l.ents[i] = engine.PendingEntry{LSN: engine.LSN(lsn + uint64(i)), Data: e}
	}
	_, err := l.c.Flush(l.pend[:len(entries)], true)
	for i := range entries {
		l.ents[i].Data = nil
	}
	return err
}

// WarmUp is the --warm path, the only place where the benchmark waits for
// dwal's background preparation: as a service might between Open and
// taking traffic, it waits until no segment preparation is pending.
// Headline cells never call it.
func (l *dwalLog) WarmUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.c.WaitPrepared(ctx); err != nil {
		return fmt.Errorf("dwal: waiting for the first segment: %w", err)
	}
	return nil
}

func (l *dwalLog) Close() error { return l.c.Close() }

func (l *dwalLog) Syncs() uint64 { return l.c.TotalFlushes() }

// Rotations counts the segments started after the first.
func (l *dwalLog) Rotations() int { return max(int(l.c.CurrentSegmentID()-l.startSeg)-1, 0) }

func (l *dwalLog) Describe() string { return describe(l.c.Backend()) }

// describe is a dwal log's backend as a result names it.
func describe(b engine.BackendInfo) string { return fmt.Sprintf("%s (%s)", b.Name, b.Reason) }
