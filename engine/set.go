package engine

import (
	"context"
	"slices"
)

// Set is many logs in one directory sharing one stream: one write
// pipeline, one ring, one preparer, one group commit. A batch carries
// entries of any logs, and one sync makes them all durable, so N logs
// commit at the rate of one (a Coordinator per log pays a sync per log).
// Each log keeps every contract of a Coordinator: the durability
// contract, no trace of a failed batch, exact deletions that never come
// back, the same Read, Replay and Bounds.
//
// A log is named by the caller's ID (any uint64) and created by its first
// write; a log never written is empty. Each segment of a set names, in its
// index file, the logs it holds and where, so that Open reads no segment
// body and a read of one log never reads another's batches.
//
// Space: a segment goes once no log has a live entry in it
// (SegmentsToRetain does not apply to a set). A log that deletes nothing
// while the others go on would pin the old segments for ever: once the
// dead fraction of the sealed segments passes Config.RewriteDeadFraction,
// the live entries of the logs that pin the oldest segment are rewritten
// forward into the stream (Pins says which logs pin how much).
//
// A Set's methods, and its logs', are safe for concurrent use.
type Set struct {
	c *Coordinator
}

// Log is one log of a Set. Its methods are the Coordinator's, for this log
// alone; they are safe for concurrent use.
type Log struct {
	c  *Coordinator
	id uint64
	v  *logView // its state (views are never dropped)
}

// OpenSet opens (or creates) the set of logs in cfg.Dir. It takes the
// directory's lock as Open does; it also opens a directory written by
// Open, whose log becomes log 0 of the set (a one-way step: from the first
// segment the set writes, Open refuses the directory).
func OpenSet(cfg Config) (*Set, error) {
	c, err := open(cfg, false)
	if err != nil {
		return nil, err
	}
	return &Set{c: c}, nil
}

// Log returns log id (created by its first write).
func (s *Set) Log(id uint64) *Log { return &Log{c: s.c, id: id, v: s.c.state.view(id)} }

// Logs returns the IDs of the logs that hold a live entry or a user
// record, ascending.
func (s *Set) Logs() []uint64 {
	c := s.c
	ids := c.idx.liveLogs()
	out := ids[:0]
	for _, id := range ids {
		// NB: the index's live ranges bound the live entries, loosely
		// where deletions cut into a segment: Bounds is exact.
		if _, _, ok, err := c.bounds(id); ok || err != nil {
			out = append(out, id)
		}
	}
	for _, id := range c.state.ids() {
		if len(c.state.of(id).User) > 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Close closes the set as Coordinator.Close does.
func (s *Set) Close() error { return s.c.Close() }

// Stats returns the counters of the whole stream (every log's batches).
func (s *Set) Stats() Stats { return s.c.Stats() }

// Backend says which backend runs and why.
func (s *Set) Backend() BackendInfo { return s.c.Backend() }

// Recovery reports what Open found and repaired.
func (s *Set) Recovery() RecoveryReport { return s.c.Recovery() }

// WaitPrepared blocks until no segment preparation is pending (see
// Coordinator.WaitPrepared).
func (s *Set) WaitPrepared(ctx context.Context) error { return s.c.WaitPrepared(ctx) }

// ID is the log's ID.
func (l *Log) ID() uint64 { return l.id }

// Append writes one entry through the set's group commit (shared by
// every log of the set) and returns once it is durable, as
// Coordinator.Append does.
func (l *Log) Append(ctx context.Context, lsn LSN, data []byte) error {
	return l.c.appendTo(ctx, l.v, lsn, data)
}

// Flush writes entries as one batch of this log, all or none after a
// crash, as Coordinator.Flush does; batches of every log of the set share
// the syncs.
func (l *Log) Flush(entries []*PendingEntry, sync bool) (FlushStats, error) {
	l.v.gate.RLock() // a rewrite of the log waits for this batch, or it for the rewrite
	defer l.v.gate.RUnlock()
	return l.c.flush(l.id, entries, sync)
}

// Read appends the bytes of the log's live entry lsn to dst, or returns
// ErrNotFound, as Coordinator.Read does.
func (l *Log) Read(lsn LSN, dst []byte) ([]byte, error) { return l.c.readLog(l.id, lsn, dst) }

// Bounds returns the smallest and largest LSN of the log's live entries,
// exact, as Coordinator.Bounds does.
func (l *Log) Bounds() (first, last LSN, ok bool, err error) { return l.c.bounds(l.id) }

// Replay calls fn for every live entry of the log with LSN >= from: in
// write order, as Coordinator.Replay does, reading the log's own batches
// only (through the segment indexes). Where a rewrite moved the log's
// oldest entries forward, they are replayed where they were written: in
// LSN order, for a log whose live batches hold ascending LSNs (a log
// whose LSNs do not ascend is never rewritten).
func (l *Log) Replay(from LSN, fn func(LSN, []byte) error) error {
	return l.c.replayLog(l.id, from, fn)
}

// DeleteBefore deletes the log's entries with LSN < lsn, exact and
// durable on return, as Coordinator.DeleteBefore does; no other log is
// touched.
func (l *Log) DeleteBefore(lsn LSN) error { return l.c.deleteBefore(l.id, lsn) }

// TruncateAfter deletes the log's entries with LSN > lsn, exact and
// durable on return, as Coordinator.TruncateAfter does; no other log is
// touched.
func (l *Log) TruncateAfter(lsn LSN) error { return l.c.truncateAfter(l.id, lsn) }

// SetUserRecord durably replaces the log's user record (at most 1 MiB),
// as Coordinator.SetUserRecord does.
func (l *Log) SetUserRecord(b []byte) error { return l.c.setUserRecord(l.id, b) }

// UserRecord returns a copy of the log's user record (nil when none).
func (l *Log) UserRecord() []byte { return slices.Clone(l.c.state.of(l.id).User) }
