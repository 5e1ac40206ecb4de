package bench

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The seed-style baseline: the write path of Card 1's flush coordinator
// (seed/flush_coordinator.rs), written for this benchmark from its
// behaviour. A segment file opened for append starts with a 5-byte header
// (4 bytes of magic, 1 byte of version); a flush writes the entries' bytes
// raw through a 64 KiB buffered writer, flushes the buffer to the OS and
// calls fdatasync; once the segment reaches its size it is flushed, synced
// again, its 24-byte .meta written (no fsync, no directory sync, as in the
// seed) and the next flush opens the next segment; segments older than
// SegmentsToRetain are removed. Concurrent commits reach it as Card 1's
// FlushThread does: the thread wakes on a flush request, drains everything
// pending and flushes it as one synced batch (a Funnel without caps).
const (
	seedMagic       = "SEED"
	seedVersion     = 1
	seedHeaderSize  = 5
	seedBufferSize  = 64 << 10
	seedSegmentSize = 64 << 20
	seedRetain      = 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type seedSystem struct{}

// SeedSystem returns the seed-style baseline.
func SeedSystem() System { return seedSystem{} }

func (seedSystem) Name() string { return "seed" }

func (seedSystem) Open(cfg Config) (Log, error) { return openSeed(cfg), nil }

// Reopen goes on after the segments a closed log left: the next flush
// starts the segment after the last one.
func (seedSystem) Reopen(cfg Config) (Log, error) {
	l := openSeed(cfg)
	if ids := seedSegments(cfg.Dir); len(ids) > 0 {
		l.segID = ids[len(ids)-1]
	}
	return l, nil
}

func openSeed(cfg Config) *seedLog {
	l := &seedLog{dir: cfg.Dir, segSize: seedSegmentSize, retain: seedRetain}
	if cfg.SegmentSize > 0 {
		l.segSize = cfg.SegmentSize
	}
	if cfg.KeepAll {
		l.retain = 1 << 30
	}
	l.funnel = NewFunnel(func(data [][]byte) error {
		l.mu.Lock()
		lsn := l.nextLSN
		l.nextLSN += uint64(len(data))
		l.mu.Unlock()
		return l.flush(lsn, data)
	}, 0, 0)
	return l
}

type seedLog struct {
	dir     string
	segSize int64
	retain  uint64
	funnel  *Funnel

	mu      sync.Mutex // serialises flushes (the seed's writer mutex)
	nextLSN uint64
	f       *os.File
	w       *bufio.Writer
	segID   uint64
	size    int64
	minLSN  uint64
	maxLSN  uint64
	count   uint64
	started int
	syncs   atomic.Uint64
}

func (l *seedLog) Commit(_ uint64, data []byte) error { return l.funnel.Commit(data) }

func (l *seedLog) Flush(lsn uint64, entries [][]byte) error { return l.flush(lsn, entries) }

func (l *seedLog) Syncs() uint64 { return l.syncs.Load() }

func (l *seedLog) Rotations() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.started-1, 0)
}

func (l *seedLog) segPath(id uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%06d.log", id))
}

func (l *seedLog) flush(lsn uint64, entries [][]byte) error {
	if len(entries) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		if err := l.openSegment(); err != nil {
			return err
		}
	}
	start := l.size
	var n int64
	for _, e := range entries {
		if _, err := l.w.Write(e); err != nil {
			return err
		}
		n += int64(len(e))
	}
	if err := l.w.Flush(); err != nil {
		return err
	}
	if l.count == 0 {
		l.minLSN = lsn
	}
	l.minLSN = min(l.minLSN, lsn)
	l.maxLSN = max(l.maxLSN, lsn+uint64(len(entries))-1)
	l.count += uint64(len(entries))
	if err := fdatasync(l.f); err != nil {
		// The seed's phantom-commit rule: cut the failed batch off.
		l.f.Truncate(start)
		l.f.Seek(start, io.SeekStart)
		return err
	}
	l.syncs.Add(1)
	l.size += n
	if l.size >= l.segSize {
		return l.rotate()
	}
	return nil
}

func (l *seedLog) openSegment() error {
	l.segID++
	f, err := os.OpenFile(l.segPath(l.segID), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	l.f, l.w = f, bufio.NewWriterSize(f, seedBufferSize)
	l.w.WriteString(seedMagic)
	l.w.WriteByte(seedVersion)
	l.size = seedHeaderSize
	l.minLSN, l.maxLSN, l.count = 0, 0, 0
	l.started++
	return nil
}

func (l *seedLog) rotate() error {
	err := l.w.Flush()
	if err == nil {
		err = fdatasync(l.f)
	}
	id, f := l.segID, l.f
	l.f, l.w, l.size = nil, nil, 0
	f.Close()
	if err != nil {
		return err
	}
	var meta [24]byte
	putU64(meta[0:], l.minLSN)
	putU64(meta[8:], l.maxLSN)
	putU64(meta[16:], l.count)
	if err := os.WriteFile(l.segPath(id)+".meta", meta[:], 0o644); err != nil {
		return err
	}
	if id > l.retain {
		for _, old := range seedSegments(l.dir) {
			if old < id-l.retain {
				os.Remove(l.segPath(old))
				os.Remove(l.segPath(old) + ".meta")
			}
		}
	}
	return nil
}

func (l *seedLog) Close() error {
	l.funnel.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.w.Flush()
	if err == nil {
		err = fdatasync(l.f)
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

// seedSegments lists the segment IDs in dir, ascending.
func seedSegments(dir string) []uint64 {
	ents, _ := os.ReadDir(dir)
	var ids []uint64
	for _, e := range ents {
		if s, ok := strings.CutSuffix(e.Name(), ".log"); ok {
			if id, err := strconv.ParseUint(s, 10, 64); err == nil {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// Replay reads every segment in order, skips its header and cuts the raw
// bytes into entries of the known size (the seed's entries carry their own
// framing, which this benchmark's fixed-size entries stand in for),
// computing a CRC32C over each as a reader checking entries would.
func (seedSystem) Replay(cfg Config, fn func([]byte)) error {
	if cfg.EntrySize <= 0 {
		return errors.New("seed replay: entry size unknown")
	}
	buf := make([]byte, cfg.EntrySize)
	var sink uint32
	for _, id := range seedSegments(cfg.Dir) {
		f, err := os.Open(filepath.Join(cfg.Dir, fmt.Sprintf("%06d.log", id)))
		if err != nil {
			return err
		}
		r := bufio.NewReaderSize(f, 1<<20)
		var hdr [seedHeaderSize]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:4]) != seedMagic {
			f.Close()
			return fmt.Errorf("seed replay: segment %d: bad header (%v)", id, err)
		}
		for {
			if _, err := io.ReadFull(r, buf); err != nil {
				if err == io.EOF {
					break
				}
				f.Close()
				return fmt.Errorf("seed replay: segment %d: %w", id, err)
			}
			sink ^= crc32.Checksum(buf, castagnoli)
			fn(buf)
		}
		f.Close()
	}
	_ = sink
	return nil
}
