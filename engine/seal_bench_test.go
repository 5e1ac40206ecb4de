package engine

import (
	"fmt"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// BenchmarkSeal measures what encryption costs the write path, per batch:
// one Flush of one entry, unsynced (the CPU path: encode, encrypt, write
// into the page cache), with and without Config.Cipher (AES-256-GCM). With
// 64 MiB segments a segment's key serves thousands of batches; with 64 KiB
// segments a new segment (and key) comes every 8 batches of 4 KiB, so a
// cost paid per segment shows. On tmpfs, so that no disk sync (a segment
// header's, at preparation) blurs it:
//
//	DWAL_BENCH_DIR=/dev/shm go test -run '^$' -bench Seal -benchtime 20000x ./engine
func BenchmarkSeal(b *testing.B) {
	key := make([]byte, 32)
	ciph, err := NewAESGCM(key)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		segment string
		size    int64
		entry   int
	}{{"64MiB", 64 << 20, 128}, {"64MiB", 64 << 20, 4096}, {"64KiB", 64 << 10, 4096}} {
		for _, enc := range []bool{false, true} {
			name := fmt.Sprintf("segment=%s/entry=%dB/cipher=%v", tc.segment, tc.entry, enc)
			b.Run(name, func(b *testing.B) {
				cfg := DefaultConfig(benchDir(b))
				cfg.Backend = BackendFallback
				cfg.SyncOnFlush = false
				cfg.SegmentSize = tc.size
				cfg.SegmentsToRetain = 2
				if enc {
					cfg.Cipher = ciph
				}
				c, err := Open(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				data := make([]byte, tc.entry)
				es := make([]*PendingEntry, 1)
				b.SetBytes(int64(tc.entry))
				lsn := LSN(0)
				for b.Loop() {
					lsn++
					es[0] = NewAsyncEntry(lsn, data)
					if _, err := c.Flush(es, false); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSegmentKey measures what a segment's key costs, once per
// segment written, read or scanned: Cipher.Segment (HKDF-SHA256, the AES
// key schedule, GCM's tables).
func BenchmarkSegmentKey(b *testing.B) {
	ciph, err := NewAESGCM(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	h := segment.Header{Version: segment.Version2, Flags: segment.FlagEncrypted, Align: 4096, ID: 1, Salt: 2}
	for b.Loop() {
		h.ID++
		if _, err := ciph.Segment(h.KeyID, h.KeyInfo()); err != nil {
			b.Fatal(err)
		}
	}
}
