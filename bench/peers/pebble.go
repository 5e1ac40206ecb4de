package peers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dwal-project/dwal/bench"
)

// Pebble's defaults for the WAL file: preallocated in steps of 110% of the
// 4 MiB default memtable (DB.walPreallocateSize), no bytes-per-sync.
const (
	pebbleLogNum     = 1
	pebblePrealloc   = 4 << 20 * 11 / 10
	pebbleSemSlots   = record.SyncConcurrency - 1 // as Pebble's commitPipeline.logSyncQSem
	pebbleSyncOffset = false                      // the recyclable chunk format (WriteWALSyncOffsets off)
)

// pebbleLogName is the name of WAL file num, as Pebble names it.
func pebbleLogName(num uint64) string { return fmt.Sprintf("%06d.log", num) }

// newLogWriter and newReader are record.NewLogWriter and record.NewReader
// with log number num: its type (base.DiskFileNum) lives in an internal
// package of Pebble, so it is inferred from the function passed in.
func newLogWriter[N ~uint64](mk func(io.Writer, N, record.LogWriterConfig) *record.LogWriter, w io.Writer, num uint64, c record.LogWriterConfig) *record.LogWriter {
	return mk(w, N(num), c)
}

func newReader[N ~uint64](mk func(io.Reader, N) *record.Reader, r io.Reader, num uint64) *record.Reader {
	return mk(r, N(num))
}

type pebbleSystem struct{}

func (pebbleSystem) Name() string { return "pebble" }

func (pebbleSystem) Supports(workload string, _ int) (bool, string) {
	if workload == "rotate" || workload == "rotate-none" {
		return false, "record.LogWriter writes one file; Pebble switches WAL files at memtable flushes, outside the record package"
	}
	return true, ""
}

func (pebbleSystem) Open(cfg bench.Config) (bench.Log, error) { return pebbleCreate(cfg, pebbleLogNum) }

// Reopen is what Pebble does with its WAL when it opens a DB again: it
// replays the last WAL file (the restart workload leaves one) and writes
// on in a new WAL file with the next number.
func (pebbleSystem) Reopen(cfg bench.Config) (bench.Log, error) {
	var last uint64
	for n := uint64(pebbleLogNum); ; n++ {
		if _, err := os.Stat(filepath.Join(cfg.Dir, pebbleLogName(n))); err != nil {
			break
		}
		last = n
	}
	if last == 0 {
		return nil, errors.New("pebble: no WAL file to reopen")
	}
	if err := pebbleRead(cfg.Dir, last, func([]byte) {}); err != nil {
		return nil, err
	}
	return pebbleCreate(cfg, last+1)
}

// pebbleCreate makes WAL file num and its LogWriter, as Pebble's WAL
// manager does.
func pebbleCreate(cfg bench.Config, num uint64) (bench.Log, error) {
	fs := vfs.Default
	f, err := fs.Create(filepath.Join(cfg.Dir, pebbleLogName(num)), vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	d, err := fs.OpenDir(cfg.Dir)
	if err != nil {
		f.Close()
		return nil, err
	}
	err = d.Sync()
	d.Close()
	if err != nil {
		f.Close()
		return nil, err
	}
	sf := vfs.NewSyncingFile(f, vfs.SyncingFileOptions{PreallocateSize: pebblePrealloc})
	l := &pebbleLog{sem: make(chan struct{}, pebbleSemSlots)}
	cfgW := record.LogWriterConfig{
		QueueSemChan:        l.sem,
		WriteWALSyncOffsets: func() bool { return pebbleSyncOffset },
	}
	l.w = newLogWriter(record.NewLogWriter, sf, num, cfgW)
	l.waits.New = func() any { return &pebbleWait{} }
	return l, nil
}

type pebbleLog struct {
	mu    sync.Mutex // Pebble's commitPipeline.mu: records are written one at a time
	w     *record.LogWriter
	sem   chan struct{}
	waits sync.Pool
	buf   []byte
}

// pebbleWait is what a Pebble Batch carries for its commit: a WaitGroup and
// an error the LogWriter's flush loop sets.
type pebbleWait struct {
	wg  sync.WaitGroup
	err error
}

func (l *pebbleLog) Commit(_ uint64, data []byte) error { return l.sync(data) }

func (l *pebbleLog) sync(rec []byte) error {
	w := l.waits.Get().(*pebbleWait)
	w.err = nil
	w.wg.Add(1)
	l.sem <- struct{}{} // released by the flush loop once the record is synced
	l.mu.Lock()
	_, err := l.w.SyncRecord(rec, &w.wg, &w.err)
	l.mu.Unlock()
	if err != nil {
		// Not queued: nobody else will release the slot or the WaitGroup.
		<-l.sem
		w.wg.Done()
		return err
	}
	w.wg.Wait()
	err = w.err
	l.waits.Put(w)
	return err
}

// Flush writes the batch as one record, as Pebble writes a Batch.
func (l *pebbleLog) Flush(_ uint64, entries [][]byte) error {
	l.buf = l.buf[:0]
	for _, e := range entries {
		l.buf = append(l.buf, e...)
	}
	return l.sync(l.buf)
}

func (l *pebbleLog) Close() error { return l.w.Close() }

// Replay reads the log back as Pebble replays a WAL: record.NewReader over
// the file, each record read whole. Records hold whole batches of
// fixed-size entries, which are handed out one by one.
func (pebbleSystem) Replay(cfg bench.Config, fn func([]byte)) error {
	return pebbleRead(cfg.Dir, pebbleLogNum, func(b []byte) {
		for len(b) >= cfg.EntrySize && cfg.EntrySize > 0 {
			fn(b[:cfg.EntrySize])
			b = b[cfg.EntrySize:]
		}
	})
}

// pebbleRead reads WAL file num in dir with record.NewReader, each record
// whole, and calls fn with it.
func pebbleRead(dir string, num uint64, fn func(rec []byte)) error {
	f, err := os.Open(filepath.Join(dir, pebbleLogName(num)))
	if err != nil {
		return err
	}
	defer f.Close()
	r := newReader(record.NewReader, f, num)
	var buf bytes.Buffer
	for {
		rr, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rr); err != nil {
			return err
		}
		fn(buf.Bytes())
	}
}
