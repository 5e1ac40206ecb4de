// Package raftstore is a dwal log as hashicorp/raft's LogStore and
// StableStore: one directory, one engine.Coordinator, raft's log entries
// as dwal entries whose LSN is the raft index, and the stable store's keys
// in the log's durable user record.
//
// Many raft groups in one process (multi-raft) share one directory with
// OpenSet: each group is one log of an engine.Set, and a Store of its
// own (SetStore.Group) with all of the guarantees below; the groups'
// StoreLogs share the set's syncs, so N groups commit at the rate of one.
//
// What raft gets (the contracts are raft v1.8.0's; each is cited where it
// is kept):
//
//   - StoreLogs is one dwal batch and one sync: durable and atomic when it
//     returns nil (after a crash all of its entries are there or none);
//   - DeleteRange deletes a prefix (after a snapshot), a suffix (a
//     conflict on a follower) or everything (after a snapshot restore),
//     exact to the entry and durable on return; a deleted suffix never
//     comes back after a crash or a restart; a range in the middle is an
//     error;
//   - GetLog of an index the store does not hold returns raft.ErrLogNotFound
//     itself, unwrapped;
//   - Set and SetUint64 are durable on return and survive a crash at any
//     point, old or new; a missing key reads as empty (nil) or 0, with a
//     nil error;
//   - the log never has a gap: StoreLogs refuses entries that do not
//     continue it.
//
// On a disk error StoreLogs returns it; raft's leader then steps down
// (raft.go, dispatchLogs: a failed StoreLogs sets the Follower state) and
// a follower rejects the AppendEntries. With io_uring + O_DIRECT the log
// rolls the failed batch back and stays writable; with the buffered
// fallback, or when the rollback fails, it turns read-only (every write
// fails with engine.ErrReadOnly, reads work): the node keeps serving
// reads of what it has and takes no part in commits. The operator checks
// the disk (the error names the file and the cause), then restarts the
// process: Open runs recovery, which never replays the failed batch.
package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/vfs"
	"github.com/hashicorp/raft"
)

// Compile-time checks: the interfaces raft looks for.
var (
	_ raft.LogStore               = (*Store)(nil)
	_ raft.StableStore            = (*Store)(nil)
	_ raft.MonotonicLogStore      = (*Store)(nil)
	_ raft.CommitTrackingLogStore = (*Store)(nil)
)

// DefaultCacheBytes is the default size of the cache of recently written
// batches (Option WithCacheSize).
const DefaultCacheBytes = 4 << 20

// wal is the log a Store keeps: a Coordinator's (Open) or one log of a
// Set (OpenSet's groups), whose methods keep the same contract.
type wal interface {
	Flush(entries []*engine.PendingEntry, sync bool) (engine.FlushStats, error)
	Read(lsn engine.LSN, dst []byte) ([]byte, error)
	Bounds() (first, last engine.LSN, ok bool, err error)
	DeleteBefore(lsn engine.LSN) error
	TruncateAfter(lsn engine.LSN) error
	SetUserRecord(b []byte) error
	UserRecord() []byte
}

var (
	_ wal = (*engine.Coordinator)(nil)
	_ wal = (*engine.Log)(nil)
)

// Store is raft's LogStore and StableStore over one dwal directory (Open)
// or over one group of a SetStore. Its methods are safe for concurrent
// use.
type Store struct {
	c       wal
	stats   func() engine.Stats
	release func() error // Close's last step: close the Coordinator, or detach the group

	// down is the error of every call once the store is closed (or, for a
	// group, could not be read).
	down atomic.Pointer[error]

	// wmu orders the writers of the log: StoreLogs, DeleteRange. A prefix
	// deletion (raft's snapshot goroutine) drops it while its record is
	// written, so the main loop's StoreLogs does not wait on it.
	wmu   sync.Mutex
	dmu   sync.Mutex    // orders the deletions
	first atomic.Uint64 // 0: empty
	last  atomic.Uint64
	enc   []byte // StoreLogs' encoding buffer (under wmu)
	ents  []engine.PendingEntry
	ptrs  []*engine.PendingEntry
	offs  []int

	staged atomic.Uint64 // StageCommitIndex: rides in the next StoreLogs

	kvMu sync.Mutex
	kv   map[string][]byte
}

// Option configures Open and OpenSet.
type Option func(*engine.Config)

// WithBackend picks the storage backend (default engine.BackendAuto:
// io_uring + O_DIRECT where they work).
func WithBackend(k engine.BackendKind) Option { return func(c *engine.Config) { c.Backend = k } }

// WithFS runs the store on a backend of the caller's (engine.Config.FS: a
// custom backend, or the test backends memfs and errorfs).
func WithFS(fs vfs.FS) Option { return func(c *engine.Config) { c.FS = fs } }

// WithSegmentSize sets the size at which a segment is sealed (default
// 64 MiB). Segments go when a prefix deletion covers them.
func WithSegmentSize(n int64) Option { return func(c *engine.Config) { c.SegmentSize = n } }

// WithCipher encrypts the entries of every new segment (engine.Config.Cipher).
func WithCipher(ciph engine.Cipher) Option { return func(c *engine.Config) { c.Cipher = ciph } }

// WithLogger receives the log's recovery actions and warnings.
func WithLogger(l *slog.Logger) Option { return func(c *engine.Config) { c.Logger = l } }

// WithCacheSize sets the bytes of the cache of recently written or read
// batches that GetLog reads before the disk (default DefaultCacheBytes; 0 turns it
// off).
func WithCacheSize(n int) Option { return func(c *engine.Config) { c.ReadCacheBytes = n } }

// WithConfig edits the engine's Config directly, after the other options.
func WithConfig(f func(*engine.Config)) Option { return f }

// Open opens (creating it when missing) the store in dir: it takes the
// directory's lock (a second Open fails wrapping engine.ErrLocked),
// recovers what a previous process left and reads the index of the log
// once (a corrupt segment fails it with engine.ErrCorrupt naming the file
// and offset).
func Open(dir string, opts ...Option) (*Store, error) {
	c, err := engine.Open(config(dir, opts))
	if err != nil {
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	s, err := newStore(c, c.Stats, c.Close)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	return s, nil
}

// config is the engine's Config of a store in dir.
func config(dir string, opts []Option) engine.Config {
	cfg := engine.DefaultConfig(dir)
	// Raft deletes its log itself, once a snapshot covers it: retention
	// would drop entries raft still needs.
	cfg.SegmentsToRetain = engine.RetainAll
	cfg.ReadCacheBytes = DefaultCacheBytes
	cfg.MaxEntrySize = 1 << 30
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// newStore is the Store of log c: it reads the log's bounds and the
// stable store.
func newStore(c wal, stats func() engine.Stats, release func() error) (*Store, error) {
	s := &Store{c: c, stats: stats, release: release}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	var err error
	if s.kv, err = decodeKV(c.UserRecord()); err != nil {
		return nil, err
	}
	return s, nil
}

// errClosed is the error of a call on a closed Store.
var errClosed = fmt.Errorf("raftstore: store closed: %w", engine.ErrClosed)

// Close closes the store: it waits for the writes in flight (StoreLogs,
// DeleteRange, Set), and every later call fails wrapping engine.ErrClosed.
// A store from Open then closes its log and releases the directory. A
// group's store (SetStore.Group) is detached from its set, which stays
// open with its other groups: the group's next Group call returns a new
// Store over the same log, as a reopen of the directory would, so one
// group can restart while the others run. A second Close returns the
// error. Close it only once raft has stopped: r.Shutdown().Error(), not
// r.Shutdown() alone, which returns before raft's goroutines end; raft
// panics when its stable store fails, as it does after Close.
func (s *Store) Close() error {
	if !s.shut(errClosed) {
		return errClosed
	}
	return s.release()
}

// shut makes err the error of every later call, once the writes in
// flight are done; it reports false when the store was down already.
func (s *Store) shut(err error) bool {
	s.dmu.Lock()
	s.wmu.Lock()
	s.kvMu.Lock()
	defer s.dmu.Unlock()
	defer s.wmu.Unlock()
	defer s.kvMu.Unlock()
	return s.down.CompareAndSwap(nil, &err)
}

// failed is nil while the store is open, else the error of its calls.
func (s *Store) failed() error {
	if p := s.down.Load(); p != nil {
		return *p
	}
	return nil
}

// refresh reads the log's bounds.
func (s *Store) refresh() error {
	first, last, ok, err := s.c.Bounds()
	if err != nil {
		return err
	}
	if !ok {
		first, last = 0, 0
	}
	s.first.Store(uint64(first))
	s.last.Store(uint64(last))
	return nil
}

// FirstIndex returns the first index in the log, 0 when it is empty
// (raft's LogStore contract, log.go).
func (s *Store) FirstIndex() (uint64, error) {
	if err := s.failed(); err != nil {
		return 0, err
	}
	return s.first.Load(), nil
}

// LastIndex returns the last index in the log, 0 when it is empty.
func (s *Store) LastIndex() (uint64, error) {
	if err := s.failed(); err != nil {
		return 0, err
	}
	return s.last.Load(), nil
}

// GetLog reads the entry at index into log. An index the log does not
// hold gives raft.ErrLogNotFound itself: raft compares with == (for
// instance replication.go, replicateTo: setupAppendEntries(...) ==
// ErrLogNotFound sends a snapshot instead).
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	if err := s.failed(); err != nil {
		return err
	}
	if first := s.first.Load(); first == 0 || index < first || index > s.last.Load() {
		return raft.ErrLogNotFound
	}
	b, err := s.c.Read(engine.LSN(index), nil)
	if errors.Is(err, engine.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raftstore: read index %d: %w", index, err)
	}
	if _, err := decodeLog(b, index, log); err != nil {
		return fmt.Errorf("raftstore: index %d: %w", index, err)
	}
	return nil
}

// StoreLog stores one entry (StoreLogs of one).
func (s *Store) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// ErrNonContiguous: StoreLogs was given entries that do not continue the
// log (or each other) index by index. Nothing was written. The error's
// message names the last index the log holds and the first one offered.
var ErrNonContiguous = errors.New("raftstore: log entries are not contiguous")

// nonContiguous is the ErrNonContiguous of entries from offered given to
// a log whose last index is last.
//
// NB: raft stores past a gap only in a log store it believes is not
// monotonic: after installing a snapshot it keeps the trailing logs and
// continues at the snapshot's index + 1. It asks the store it was given,
// so a wrapper (metrics, logging) that does not forward IsMonotonic hides
// this store's answer, and the follower never catches up; raft logs this
// error at its own level. raft.LogCache forwards it.
func nonContiguous(last, offered uint64) error {
	if offered > last+1 {
		return fmt.Errorf("%w: the log holds up to index %d and StoreLogs offered index %d, a gap of %d: "+
			"raft leaves a gap only in a store it believes is not monotonic, so a wrapper around this store must forward IsMonotonic (as raft.LogCache does)",
			ErrNonContiguous, last, offered, offered-last-1)
	}
	return fmt.Errorf("%w: the log holds up to index %d and StoreLogs offered index %d, which it holds already: "+
		"a conflicting suffix must be deleted (DeleteRange) before it is written again", ErrNonContiguous, last, offered)
}

// StoreLogs appends logs as one batch with one sync: durable and atomic
// when it returns nil. The entries must follow each other index by index
// and continue the log (the first one after LastIndex); into an empty log
// any first index goes (after a snapshot install raft continues past the
// snapshot). This store is monotonic (IsMonotonic): raft never relies on a
// gap with it (log.go, MonotonicLogStore), so a gap is refused with
// ErrNonContiguous and nothing is written. A wrapper around the store
// must forward IsMonotonic, or raft stores past a gap after a snapshot
// install (the error says so).
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.failed(); err != nil {
		return err
	}
	for i := 1; i < len(logs); i++ {
		if logs[i].Index != logs[i-1].Index+1 {
			return fmt.Errorf("%w: index %d follows %d in one StoreLogs", ErrNonContiguous, logs[i].Index, logs[i-1].Index)
		}
	}
	if last := s.last.Load(); s.first.Load() != 0 && logs[0].Index != last+1 {
		return nonContiguous(last, logs[0].Index)
	}
	if logs[0].Index == 0 {
		return fmt.Errorf("%w: index 0 (raft's indexes start at 1)", ErrNonContiguous)
	}
	commit := s.staged.Load()
	s.enc = s.enc[:0]
	s.ents = s.ents[:0]
	offs := s.offs[:0]
	for _, l := range logs {
		offs = append(offs, len(s.enc))
		s.enc = appendLog(s.enc, l, commit)
	}
	offs = append(offs, len(s.enc))
	s.offs = offs
	s.ptrs = s.ptrs[:0]
	for i, l := range logs {
		s.ents = append(s.ents, engine.PendingEntry{LSN: engine.LSN(l.Index), Data: s.enc[offs[i]:offs[i+1]]})
	}
	for i := range s.ents {
		s.ptrs = append(s.ptrs, &s.ents[i])
	}
	_, err := s.c.Flush(s.ptrs, true)
	clear(s.ptrs) // keep no pointer into the entries past the call
	if err != nil {
		return fmt.Errorf("raftstore: store logs %d..%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
	}
	if s.first.Load() == 0 {
		s.first.Store(logs[0].Index)
	}
	s.last.Store(logs[len(logs)-1].Index)
	return nil
}

// ErrMiddleRange: DeleteRange was asked to delete a range inside the log
// (neither a prefix nor a suffix); raft never asks that. Nothing was
// deleted.
var ErrMiddleRange = errors.New("raftstore: only a prefix or a suffix of the log can be deleted")

// DeleteRange deletes the entries min..max (inclusive), durably on
// return. Raft asks for a prefix after a snapshot (snapshot.go,
// compactLogsWithTrailing: DeleteRange(FirstIndex, ...)): FirstIndex
// becomes max+1; a suffix on a conflict (raft.go, appendEntries:
// DeleteRange(entry.Index, lastLogIdx)): LastIndex becomes min-1 and the
// next StoreLogs continues at min; or everything after a snapshot restore
// (snapshot.go, removeOldLogs): both become 0 and the next StoreLogs may
// start at any index. The part of min..max outside the log is ignored; a
// range that misses the log, or min > max, deletes nothing.
func (s *Store) DeleteRange(min, max uint64) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if err := s.failed(); err != nil {
		return err
	}
	s.wmu.Lock()
	locked := true
	defer func() {
		if locked {
			s.wmu.Unlock()
		}
	}()
	first, last := s.first.Load(), s.last.Load()
	if min > max || first == 0 || max < first || min > last {
		return nil
	}
	lo, hi := min, max
	if lo < first {
		lo = first
	}
	if hi > last {
		hi = last
	}
	switch {
	case lo == first && hi < last:
		// A prefix: no write lands below it, so StoreLogs goes on while its
		// record is written (raft compacts from its snapshot goroutine
		// while the main loop appends).
		s.wmu.Unlock()
		locked = false
		if err := s.c.DeleteBefore(engine.LSN(hi + 1)); err != nil {
			return fmt.Errorf("raftstore: delete %d..%d: %w", lo, hi, err)
		}
		s.wmu.Lock()
		locked = true
		return s.refresh()
	case hi == last:
		// A suffix, or everything (the engine then empties the log: any
		// index may come next).
		err := s.c.TruncateAfter(engine.LSN(lo - 1))
		if rerr := s.refresh(); err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("raftstore: delete %d..%d: %w", lo, hi, err)
		}
		return nil
	}
	return fmt.Errorf("%w: DeleteRange(%d, %d) of the log %d..%d", ErrMiddleRange, min, max, first, last)
}

// IsMonotonic reports true: the store holds a log without gaps, so raft
// removes every log after restoring a snapshot instead of leaving a gap
// (raft.go, installSnapshot and restoreUserSnapshot: removeOldLogs).
func (s *Store) IsMonotonic() bool { return true }

// StageCommitIndex stages raft's commit index; it is written with the
// entries of the next StoreLogs, in the same batch (log.go,
// CommitTrackingLogStore: never persisted apart from the entries).
func (s *Store) StageCommitIndex(idx uint64) error {
	if err := s.failed(); err != nil {
		return err
	}
	s.staged.Store(idx)
	return nil
}

// GetCommitIndex returns the commit index written with the last entry of
// the log, never above LastIndex (0 for an empty log or one written
// without a staged index).
func (s *Store) GetCommitIndex() (uint64, error) {
	if err := s.failed(); err != nil {
		return 0, err
	}
	last := s.last.Load()
	if last == 0 {
		return 0, nil
	}
	b, err := s.c.Read(engine.LSN(last), nil)
	if err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return 0, nil // deleted meanwhile
		}
		return 0, fmt.Errorf("raftstore: read index %d: %w", last, err)
	}
	var l raft.Log
	commit, err := decodeLog(b, last, &l)
	if err != nil {
		return 0, fmt.Errorf("raftstore: index %d: %w", last, err)
	}
	return min(commit, last), nil
}
