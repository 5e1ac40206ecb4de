package peers

import (
	"bytes"
	"errors"
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
	pebbleLogName    = "000001.log"
	pebbleSyncOffset = false // the recyclable chunk format (WriteWALSyncOffsets off)
)

type pebbleSystem struct{}

func (pebbleSystem) Name() string { return "pebble" }

func (pebbleSystem) Supports(workload string, _ int) (bool, string) {
	if workload == "rotate" || workload == "rotate-none" {
		return false, "record.LogWriter writes one file; Pebble switches WAL files at memtable flushes, outside the record package"
	}
	return true, ""
}

func (pebbleSystem) Open(cfg bench.Config) (bench.Log, error) {
	fs := vfs.Default
	f, err := fs.Create(filepath.Join(cfg.Dir, pebbleLogName), vfs.WriteCategoryUnspecified)
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
	l.w = record.NewLogWriter(sf, pebbleLogNum, record.LogWriterConfig{
		QueueSemChan:        l.sem,
		WriteWALSyncOffsets: func() bool { return pebbleSyncOffset },
	})
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
	f, err := os.Open(filepath.Join(cfg.Dir, pebbleLogName))
	if err != nil {
		return err
	}
	defer f.Close()
	r := record.NewReader(f, pebbleLogNum)
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
		b := buf.Bytes()
		for len(b) >= cfg.EntrySize && cfg.EntrySize > 0 {
			fn(b[:cfg.EntrySize])
			b = b[cfg.EntrySize:]
		}
	}
}
