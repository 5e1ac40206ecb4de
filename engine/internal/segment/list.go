package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/dwal-project/dwal/engine/vfs"
)

// Listing is a log directory's names sorted by role: the one listing that
// recovery and the inspection tools both read.
type Listing struct {
	IDs        []uint64               // segment IDs (NNNNNN.log), ascending
	NotRegular map[uint64]fs.FileMode // segments that are not regular files: their type
	Metas      map[uint64]bool        // .meta files present, orphans (segment gone) included
	Indexes    map[uint64]bool        // .idx files present, orphans included
	Fences     map[uint64]bool        // end-of-log records present
	Leftovers  []string               // temporary files of interrupted work (IsLeftover)
	// Other holds every entry that is not a segment nor the .meta or index of one,
	// leftovers, fences and the LOCK included, in listing order.
	Other []fs.DirEntry
}

// List reads fsys's directory once.
func List(fsys vfs.FS) (*Listing, error) {
	ents, err := fsys.List()
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	l := &Listing{NotRegular: map[uint64]fs.FileMode{}, Metas: map[uint64]bool{}, Indexes: map[uint64]bool{}, Fences: map[uint64]bool{}}
	for _, e := range ents {
		name := e.Name()
		if id, ok := ParseID(name, Suffix); ok {
			l.IDs = append(l.IDs, id)
			if !e.Type().IsRegular() {
				l.NotRegular[id] = e.Type()
			}
			continue
		}
		if id, ok := ParseID(name, MetaSuffix); ok {
			l.Metas[id] = true
		} else if id, ok := ParseID(name, IndexSuffix); ok {
			l.Indexes[id] = true
		} else if id, ok := ParseID(name, FenceSuffix); ok {
			l.Fences[id] = true
		} else if IsLeftover(name) {
			l.Leftovers = append(l.Leftovers, name)
		}
	}
	slices.Sort(l.IDs)
	for _, e := range ents {
		name := e.Name()
		if _, ok := ParseID(name, Suffix); ok {
			continue
		}
		if id, ok := ParseID(name, MetaSuffix); ok && l.Has(id) {
			continue
		}
		if id, ok := ParseID(name, IndexSuffix); ok && l.Has(id) {
			continue
		}
		l.Other = append(l.Other, e)
	}
	return l, nil
}

// Has reports whether segment id is in the listing.
func (l *Listing) Has(id uint64) bool {
	_, ok := slices.BinarySearch(l.IDs, id)
	return ok
}

// Orphans returns the names of the .meta and index files whose segment is
// gone (a crash between retiring a segment and removing them), sorted.
func (l *Listing) Orphans() []string {
	var names []string
	for id := range l.Metas {
		if !l.Has(id) {
			names = append(names, MetaName(id))
		}
	}
	for id := range l.Indexes {
		if !l.Has(id) {
			names = append(names, IndexName(id))
		}
	}
	slices.Sort(names)
	return names
}

// ReadMeta reads segment id's .meta. ok is false when it is missing or
// malformed (DecodeMeta's one rule); err is a read failure of another kind.
func ReadMeta(fsys vfs.FS, id uint64) (m Meta, ok bool, err error) {
	b, err := fsys.ReadFile(MetaName(id))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("read %s: %w", MetaName(id), err)
	}
	m, ok = DecodeMeta(b)
	return m, ok, nil
}

// ReadFence reads segment id's end-of-log record; one that is not valid
// gives an error wrapping ErrCorrupt.
func ReadFence(fsys vfs.FS, id uint64) (int64, error) {
	b, err := fsys.ReadFile(FenceName(id))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", FenceName(id), err)
	}
	off, ok := DecodeFence(b)
	if !ok {
		return 0, fmt.Errorf("%w: %s is not a valid end-of-log record", ErrCorrupt, FenceName(id))
	}
	return off, nil
}
