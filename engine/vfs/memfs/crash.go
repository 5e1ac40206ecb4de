package memfs

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
)

// CrashOption configures CrashClone.
type CrashOption func(*crashConfig)

type crashConfig struct {
	keep float64 // probability that a pending op reaches the medium whole
	torn float64 // probability that a multi-sector pending write is torn
}

// KeepUnsynced makes the crash keep every pending op: the clone holds the
// current state (as if the write cache had been flushed just in time).
func KeepUnsynced() CrashOption {
	return func(c *crashConfig) { c.keep, c.torn = 1, 0 }
}

// DropUnsynced makes the crash lose every pending op: the clone holds the
// durable state only.
func DropUnsynced() CrashOption {
	return func(c *crashConfig) { c.keep, c.torn = 0, 0 }
}

// Probabilities sets the chance that a pending op survives whole (keep) and
// that a pending write of several sectors is torn instead (torn); the rest
// are lost. keep+torn must not pass 1. The default is keep 0.5, torn 0.25.
func Probabilities(keep, torn float64) CrashOption {
	if keep < 0 || torn < 0 || keep+torn > 1 {
		panic(fmt.Sprintf("memfs: crash probabilities keep %v torn %v out of range", keep, torn))
	}
	return func(c *crashConfig) { c.keep, c.torn = keep, torn }
}

// CrashClone returns a new FS holding what a power cut at this instant could
// leave on the medium, drawn from seed (the same history and seed give the
// same clone). The clone shares no mutable state with f: no inode, no byte
// slice, no lock, no open file. Every byte and name in it is durable. f is
// not changed and stays usable. Safe to call concurrently with other methods
// (the clone is taken under the FS mutex, so it sees each op whole or not).
//
// The model, in order:
//
//  1. Directory: start from the durable names, then replay the pending
//     creates, removes and renames in order, each surviving with probability
//     keep, and stop at the first lost one (a journaling file system commits
//     metadata in order, so a prefix survives). A create without SyncDir may
//     vanish; a rename without SyncDir may be undone, but a name never points
//     at nothing halfway through a rename.
//  2. Each surviving file: start from its durable bytes, then replay its
//     pending ops in order. A truncate survives whole with probability keep.
//     A write survives whole with probability keep, is torn with probability
//     torn (half the time a prefix of 1..n-1 of its n sectors, otherwise each
//     sector independently with probability 1/2), and is lost otherwise. A
//     single-sector write is never torn: it lands or not.
//  3. The file's size is its current size with probability keep, else its
//     durable size; bytes beyond what the replay wrote read as zeros.
//
// Not modelled: corruption of durable bytes (bit rot, misdirected writes),
// reordering of durable state, a sector torn inside itself, a lost dirty
// page after a failed sync (fsyncgate: Sync never fails here; use errorfs),
// ordering between a file's data and the directory (a file can survive with
// its durable size but not its name, or vice versa), and timestamps.
func (f *FS) CrashClone(seed int64, opts ...CrashOption) *FS {
	cfg := crashConfig{keep: 0.5, torn: 0.25}
	for _, o := range opts {
		o(&cfg)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	var rep strings.Builder
	fmt.Fprintf(&rep, "crash seed %d keep %v torn %v\n", seed, cfg.keep, cfg.torn)

	f.mu.Lock()
	defer f.mu.Unlock()

	names := maps.Clone(f.durable)
	kept := 0
	for _, op := range f.dirLog {
		if !chance(rng, cfg.keep) {
			break
		}
		kept++
		switch op.kind {
		case dirCreate:
			names[op.name] = op.ino
		case dirRemove:
			delete(names, op.name)
		case dirRename:
			names[op.to] = names[op.name]
			delete(names, op.name)
		}
	}
	fmt.Fprintf(&rep, "directory: %d of %d pending ops kept\n", kept, len(f.dirLog))

	c := New(f.align, WithSectorSize(f.sector), WithCapacity(f.capacity))
	c.nextID = f.nextID
	made := map[*inode]*inode{}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		old := names[name]
		ino, ok := made[old]
		if !ok {
			img := old.crashImage(rng, cfg, f.sector, name, &rep)
			ino = &inode{id: old.id, data: img, synced: slices.Clone(img)}
			made[old] = ino
		}
		c.names[name] = ino
	}
	c.durable = maps.Clone(c.names)
	c.report = rep.String()
	return c
}

// CrashReport says what the CrashClone that made f kept, tore and lost (""
// for an FS that is not a clone). Print it with the seed on a test failure.
func (f *FS) CrashReport() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.report
}

func chance(rng *rand.Rand, p float64) bool {
	switch {
	case p >= 1:
		return true
	case p <= 0:
		return false
	}
	return rng.Float64() < p
}

// crashImage builds the bytes one file holds after the crash (step 2 and 3
// of CrashClone's model).
func (ino *inode) crashImage(rng *rand.Rand, cfg crashConfig, sector int, name string, rep *strings.Builder) []byte {
	img := slices.Clone(ino.synced)
	for i, op := range ino.pending {
		if op.trunc {
			if chance(rng, cfg.keep) {
				img = op.apply(img)
				fmt.Fprintf(rep, "%s: op %d truncate %d kept\n", name, i, op.off)
			} else {
				fmt.Fprintf(rep, "%s: op %d truncate %d lost\n", name, i, op.off)
			}
			continue
		}
		n := (len(op.data) + sector - 1) / sector
		mask := make([]bool, n)
		u := rng.Float64()
		what := "lost"
		switch {
		case u < cfg.keep:
			what = "kept"
			for s := range mask {
				mask[s] = true
			}
		case u < cfg.keep+cfg.torn && n == 1:
			if rng.IntN(2) == 0 {
				what = "kept"
				mask[0] = true
			}
		case u < cfg.keep+cfg.torn && rng.IntN(2) == 0:
			k := 1 + rng.IntN(n-1)
			what = fmt.Sprintf("torn: first %d of %d sectors", k, n)
			for s := range k {
				mask[s] = true
			}
		case u < cfg.keep+cfg.torn:
			var got []int
			for s := range mask {
				if rng.IntN(2) == 0 {
					mask[s] = true
					got = append(got, s)
				}
			}
			what = fmt.Sprintf("torn: sectors %v of %d", got, n)
		}
		fmt.Fprintf(rep, "%s: op %d write [%d, %d) %s\n", name, i, op.off, op.off+int64(len(op.data)), what)
		for s, ok := range mask {
			if !ok {
				continue
			}
			lo := s * sector
			hi := min(lo+sector, len(op.data))
			img = fileOp{off: op.off + int64(lo), data: op.data[lo:hi]}.apply(img)
		}
	}
	size := len(ino.synced)
	if len(ino.data) != size && chance(rng, cfg.keep) {
		size = len(ino.data)
	}
	fmt.Fprintf(rep, "%s: size %d (durable %d, current %d)\n", name, size, len(ino.synced), len(ino.data))
	return resize(img, size)
}
