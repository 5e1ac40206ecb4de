package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/engine/align"
)

// openFloorGroup opens the group-commit floor in a temporary directory, or
// skips where O_DIRECT is refused.
func openFloorGroup(t *testing.T) (*floorGroupLog, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := FloorGroupSystem().Open(Config{Dir: dir})
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("O_DIRECT refused in %s: %v", dir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return l.(*floorGroupLog), filepath.Join(dir, "floor-group.dat")
}

// TestFloorGroupCommitsEveryRecordAndWakesEveryWriter: 16 writers commit
// distinct records; every Commit returns (the flusher wakes every writer
// of its batch), and the file holds every record once, batch after batch
// at aligned offsets.
func TestFloorGroupCommitsEveryRecordAndWakesEveryWriter(t *testing.T) {
	l, path := openFloorGroup(t)
	const writers, each, size = 16, 100, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := make([]byte, size)
			for i := range each {
				copy(rec, fmt.Sprintf("w%02d-%04d-", w, i))
				for j := 9; j < size; j++ {
					rec[j] = 'a' + byte((w+i+j)%26)
				}
				if err := l.Commit(0, rec); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	if !waitTimeout(&wg, time.Minute) {
		t.Fatal("writers still waiting a minute later: a batch's writers were not all woken")
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	records, syncs := l.records.Load(), l.Syncs()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if records != writers*each || syncs == 0 || syncs > records {
		t.Fatalf("%d records in %d synced batches, want %d records", records, syncs, writers*each)
	}
	t.Logf("%d records in %d batches (%.1f per sync)", records, syncs, float64(records)/float64(syncs))

	// The file was pre-zeroed: batches run from offset 0, records back to
	// back, each batch zero-padded to the alignment.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	batches := 0
	for off := 0; off < len(b) && b[off] != 0; batches++ {
		for off+size <= len(b) && b[off] == 'w' {
			seen[string(b[off:off+9])]++
			off += size
		}
		off = align.Up(off, l.align)
	}
	if len(seen) != writers*each || uint64(batches) != syncs {
		t.Errorf("file holds %d distinct records in %d batches, want %d in %d", len(seen), batches, writers*each, syncs)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("record %s written %d times", k, n)
		}
	}
}

// TestFloorGroupFlushAndClose: a Flush is one request, whole in one batch;
// after Close, commits fail rather than wait.
func TestFloorGroupFlushAndClose(t *testing.T) {
	l, _ := openFloorGroup(t)
	entries := [][]byte{make([]byte, 4096), make([]byte, 4096), make([]byte, 100)}
	if err := l.Flush(1, entries); err != nil {
		t.Fatal(err)
	}
	if l.records.Load() != 3 || l.Syncs() != 1 {
		t.Errorf("%d records in %d batches, want 3 in 1", l.records.Load(), l.Syncs())
	}
	if err := l.Flush(4, [][]byte{make([]byte, floorGroupMaxBatch+1)}); err == nil {
		t.Error("a request larger than a batch was accepted")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(5, []byte("late")); !errors.Is(err, errFloorGroupClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
}
