package engine

import (
	"errors"
	"io/fs"
	"sync"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs"
)

// The recycler owns every decision about reusing a segment file, and the
// state those decisions need. A new segment (makeSegment) takes a spare
// file when there is one instead of allocating: rotation then costs a
// rename, not an allocation, and the file's blocks are already initialised
// as far as its earlier life wrote them (the new header's salt makes its
// stale batches end the log). Spares come from
//
//   - segments retired by retention or a deletion (retire), renamed to
//     recycle-N.tmp, and
//   - a prepared or retired file an earlier process left (adoptLeftover,
//     at recovery: prepared-N.tmp, recycle-N.tmp).
//
// The rules:
//
//   - files are reused only where the backend bypasses the page cache
//     (vfs.DirectIO): with buffered I/O a retired file is removed;
//   - a file becomes a spare only once its rename is durable (dirSynced
//     after a successful directory sync). NB: reusing it before would write
//     a new header into a file that a crash could bring back under its old
//     name;
//   - at most maxSpares files are kept; the others are removed;
//   - only a file initialised from its start for at least a new segment's
//     initialised head is worth keeping. How far a file is initialised is
//     what this process's frontier saw for the segments it sealed
//     (sealed), else the file system's extent map (reusable). Only speed
//     depends on the answer: stale bytes never replay, and a file's
//     frontier initialises what is not.
//
// Its methods are called under pipeline.mu, but for take (the background
// preparer calls it too); its own mu guards its state.
type recycler struct {
	env *env

	mu      sync.Mutex
	prefix  map[uint64]int64 // sealed segments this process wrote: bytes initialised from the start
	pending []spareFile      // renamed for reuse, waiting for the directory sync
	spare   []spareFile      // ready for reuse
}

// maxSpares bounds the spare files kept.
const maxSpares = 1

// spareFile is a segment file kept for reuse under a temporary name.
type spareFile struct {
	name   string // recycle-N.tmp or prepared-N.tmp
	inited int64  // [0, inited) of it is initialised
}

func (r *recycler) init(e *env) { r.env = e }

// reuses reports whether files are reused at all.
func (r *recycler) reuses() bool { return !pageCache(r.env.fs) }

// sealed notes how far sealed segment a is initialised, for its reuse once
// it is retired.
func (r *recycler) sealed(a *active) {
	inited := a.size // no initialiser: initialised whole, or the backend needs none
	if a.init != nil {
		inited = min(a.init.end.Load(), a.size)
	}
	if inited < min(r.env.aheadChunk(), a.size) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.prefix == nil {
		r.prefix = map[uint64]int64{}
	}
	r.prefix[a.id] = inited
}

// retire removes segment id's file and .meta, or keeps the file for reuse
// under recycle-N.tmp when it is worth it. A missing segment gives an
// error wrapping fs.ErrNotExist.
func (r *recycler) retire(id uint64) error {
	r.mu.Lock()
	inited, known := r.prefix[id]
	delete(r.prefix, id)
	r.mu.Unlock()
	fsys := r.env.fs
	if !known && r.reuses() && initBlocks(fsys) {
		inited, known = r.reusable(segment.Name(id))
	}
	kept := false
	if known && r.reuses() {
		tmp := segment.RecycleName(id)
		err := fsys.Rename(segment.Name(id), tmp)
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil {
			kept = true
			r.mu.Lock()
			r.pending = append(r.pending, spareFile{name: tmp, inited: inited})
			r.mu.Unlock()
		}
	}
	if !kept {
		if err := fsys.Remove(segment.Name(id)); err != nil {
			return err
		}
	}
	fsys.Remove(segment.MetaName(id))
	return nil
}

// dirSynced is told when a directory sync returned: the files renamed
// before it become spares when it succeeded (up to maxSpares), and are
// removed otherwise.
func (r *recycler) dirSynced(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.pending {
		if ok && len(r.spare) < maxSpares {
			r.spare = append(r.spare, s)
		} else {
			r.env.fs.Remove(s.name)
		}
	}
	clear(r.pending)
	r.pending = r.pending[:0]
}

// take renames a spare file to name (a new segment's temporary name), opens
// it and returns it with how far it is initialised; ok is false when there
// is no spare fit for a file of size bytes (one that is not is removed).
func (r *recycler) take(name string, size int64) (f vfs.File, inited int64, ok bool) {
	r.mu.Lock()
	if len(r.spare) == 0 {
		r.mu.Unlock()
		return nil, 0, false
	}
	s := r.spare[len(r.spare)-1]
	r.spare = r.spare[:len(r.spare)-1]
	r.mu.Unlock()
	fsys := r.env.fs
	if s.name != name { // a file kept from an earlier process may have it already
		if err := fsys.Rename(s.name, name); err != nil {
			fsys.Remove(s.name)
			return nil, 0, false
		}
	}
	f, err := fsys.Open(name, false)
	if err != nil {
		fsys.Remove(name)
		return nil, 0, false
	}
	if sz, err := f.Size(); err != nil || sz < size {
		f.Close()
		fsys.Remove(name)
		return nil, 0, false
	}
	return f, min(s.inited, size), true
}

// adoptLeftover picks, among leftover files at recovery, the prepared or
// retired segment file (one a Close left, or a crash) best reused as the
// next segment: full-sized, with the longest prefix the file system's
// extent map shows written. It becomes a spare at recovery's directory
// sync (NB: its name must be durable before a new header goes into it: a
// crash could otherwise bring back the segment it was retired from
// holding another segment's header). It returns its name ("" when none),
// which recovery must not remove.
//
// NB: only a regular file is the directory's own (a symlink would have
// the next segment written into whatever it points to), and only one
// whose segment ID has no .log of its own: a crash in the middle of the
// rename that made it (NNNNNN.log to recycle-N.tmp, prepared-N.tmp to
// NNNNNN.log) can leave both names on one file where the directory is not
// journaled, and a new header must not go into a live segment.
func (r *recycler) adoptLeftover(l *segment.Listing, leftovers []string) string {
	if !r.reuses() {
		return ""
	}
	regular := map[string]bool{}
	for _, e := range l.Other {
		regular[e.Name()] = e.Type().IsRegular()
	}
	var best spareFile
	for _, name := range leftovers {
		id, ok := segment.ParseTempID(name)
		if !ok || !regular[name] || l.Has(id) {
			continue
		}
		if inited, ok := r.reusable(name); ok && (best.name == "" || inited > best.inited) {
			best = spareFile{name: name, inited: inited}
		}
	}
	if best.name != "" {
		r.mu.Lock()
		r.pending = append(r.pending, best)
		r.mu.Unlock()
	}
	return best.name
}

// reusable reports whether segment file name, which this process did not
// write to its end (an earlier one did, or it is a leftover), can become a
// new segment, and how much of it from the start is initialised: it must
// be full-sized and, where blocks are initialised before use, written
// (the file system's extent map, vfs.WrittenPrefixer) for at least a new
// segment's initialised head.
func (r *recycler) reusable(name string) (int64, bool) {
	fsys := r.env.fs
	size := r.env.segmentFileSize()
	if !initBlocks(fsys) {
		f, err := fsys.Open(name, true)
		if err != nil {
			return 0, false
		}
		sz, err := f.Size()
		f.Close()
		return sz, err == nil && sz >= size
	}
	w, ok := findIface[vfs.WrittenPrefixer](fsys)
	if !ok {
		return 0, false
	}
	n, sz, err := w.WrittenPrefix(name)
	if err != nil || sz < size || n < min(r.env.aheadChunk(), sz) {
		return 0, false
	}
	return n, true
}
