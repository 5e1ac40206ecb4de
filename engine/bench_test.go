package engine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchDir is where engine benchmarks write: $DWAL_BENCH_DIR or a temp dir.
func benchDir(b *testing.B) string {
	if d := os.Getenv("DWAL_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench-*")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// BenchmarkAppend: C goroutines each appending one entry and waiting for
// durability (the commit workload). Reports entries/s and commit latency.
func BenchmarkAppend(b *testing.B) {
	for _, kind := range []BackendKind{BackendUring, BackendFallback} {
		for _, writers := range []int{1, 16, 64} {
			for _, size := range []int{128, 4096} {
				b.Run(fmt.Sprintf("%v/C=%d/%dB", kind, writers, size), func(b *testing.B) {
					cfg := DefaultConfig(benchDir(b))
					cfg.Backend = kind
					c, err := Open(cfg)
					if err != nil {
						b.Skip(err)
					}
					defer c.Close()
					data := make([]byte, size)
					lat := make([]time.Duration, b.N)
					var next atomic.Int64
					var wg sync.WaitGroup
					b.ReportAllocs()
					b.ResetTimer()
					start := time.Now()
					for w := 0; w < writers; w++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for {
								i := next.Add(1) - 1
								if i >= int64(b.N) {
									return
								}
								t0 := time.Now()
								if err := c.Append(context.Background(), LSN(i+1), data); err != nil {
									b.Error(err)
									return
								}
								lat[i] = time.Since(t0)
							}
						}()
					}
					wg.Wait()
					el := time.Since(start)
					b.StopTimer()
					slices.Sort(lat)
					b.ReportMetric(float64(b.N)/el.Seconds(), "entries/s")
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
					b.ReportMetric(float64(b.N)/float64(max(c.TotalFlushes(), 1)), "entries/sync")
				})
			}
		}
	}
}

// BenchmarkSegmentInit compares a long commit run (several rotations) with
// the background preparer initialising new segments' blocks and without.
func BenchmarkSegmentInit(b *testing.B) {
	for _, init := range []bool{false, true} {
		b.Run(fmt.Sprintf("init=%v", init), func(b *testing.B) {
			initPrepared = init
			defer func() { initPrepared = true }()
			cfg := DefaultConfig(benchDir(b))
			cfg.Backend = BackendUring
			cfg.SegmentSize = 16 << 20
			c, err := Open(cfg)
			if err != nil {
				b.Skip(err)
			}
			defer c.Close()
			data := make([]byte, 4096)
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if err := c.Append(context.Background(), LSN(i+1), data); err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/el.Seconds(), "entries/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)*999/1000].Microseconds()), "p99.9-µs")
		})
	}
}

// BenchmarkReplay reads back 256 MiB of 4 KiB entries (b.N times).
func BenchmarkReplay(b *testing.B) {
	for _, kind := range []BackendKind{BackendUring, BackendFallback} {
		b.Run(kind.String(), func(b *testing.B) {
			cfg := DefaultConfig(benchDir(b))
			cfg.Backend = kind
			c, err := Open(cfg)
			if err != nil {
				b.Skip(err)
			}
			defer c.Close()
			benchReplay(b, c, 256)
		})
	}
}

// benchReplay writes mib MiB of 4 KiB entries into c, in 1 MiB batches, and
// times replaying all of them.
func benchReplay(b *testing.B, c *Coordinator, mib int) {
	data := make([]byte, 4096)
	es := make([]*PendingEntry, 256)
	lsn := LSN(1)
	for range mib {
		for i := range es {
			es[i] = NewAsyncEntry(lsn, data)
			lsn++
		}
		if _, err := c.Flush(es, false); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(mib) << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		if err := c.Replay(0, func(LSN, []byte) error { n++; return nil }); err != nil || n != mib*256 {
			b.Fatalf("replayed %d of %d: %v", n, mib*256, err)
		}
	}
}

// BenchmarkEncryption measures the cost of Config.Cipher (AES-256-GCM) on
// the commit workload (C=64, 128 B and 4 KiB entries) and on replay.
func BenchmarkEncryption(b *testing.B) {
	key := make([]byte, 32)
	ciph, _ := NewAESGCM(key)
	for _, enc := range []bool{false, true} {
		for _, size := range []int{128, 4096} {
			b.Run(fmt.Sprintf("commit/C=64/%dB/encrypted=%v", size, enc), func(b *testing.B) {
				cfg := DefaultConfig(benchDir(b))
				if enc {
					cfg.Cipher = ciph
				}
				c, err := Open(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				data := make([]byte, size)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := 0; w < 64; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
							if err := c.Append(context.Background(), LSN(i), data); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
			})
		}
		b.Run(fmt.Sprintf("replay/encrypted=%v", enc), func(b *testing.B) {
			cfg := DefaultConfig(benchDir(b))
			if enc {
				cfg.Cipher = ciph
			}
			c, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			benchReplay(b, c, 64)
		})
	}
}

// TestAppendSteadyStateAllocations: one writer, where every entry is a
// batch of its own, allocates nothing per entry once warm, with and
// without a cipher.
func TestAppendSteadyStateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector (make test runs this test again without it)")
	}
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("cipher=%t", encrypted), func(t *testing.T) {
			cfg := DefaultConfig(t.TempDir())
			cfg.Backend = BackendFallback
			cfg.SyncOnFlush = false // allocations, not the disk, are measured here
			if encrypted {
				ciph, err := NewAESGCM(make([]byte, 32))
				if err != nil {
					t.Fatal(err)
				}
				cfg.Cipher = ciph
			}
			c := openT(t, cfg)
			if allocs, _ := appendAllocs(t, c); allocs > 0.1 {
				t.Fatalf("%.2f allocations per Append", allocs)
			}
		})
	}
}

// BenchmarkCard1VsAppend: 64 goroutines committing 128-byte entries, once
// through Append and once the Card 1 way (each queues a sync entry for a
// FlushThread, requests a flush and waits for its Completion), on a fresh
// directory each. Compare the entries/s of the two in one run:
//
//	DWAL_BENCH_DIR=/mnt/x go test -run '^$' -bench Card1VsAppend -benchtime 64000x ./engine
func BenchmarkCard1VsAppend(b *testing.B) {
	const writers = 64
	for _, card := range []bool{false, true} {
		name := "append"
		if card {
			name = "flushthread"
		}
		b.Run(name, func(b *testing.B) {
			c, err := Open(DefaultConfig(benchDir(b)))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			var q entryQueue
			ft := StartFlushThread(c, q.drain, 0)
			defer ft.Shutdown()
			data := make([]byte, 128)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if !card {
							if err := c.Append(context.Background(), LSN(i), data); err != nil {
								b.Error(err)
								return
							}
							continue
						}
						e, done := NewSyncEntry(LSN(i), data)
						q.push(e)
						ft.RequestFlush()
						if err := done.Wait(); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
			b.ReportMetric(float64(b.N)/float64(max(c.TotalFlushes(), 1)), "entries/batch")
		})
	}
}
