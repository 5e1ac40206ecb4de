package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkManyWriters: N writers, each Append durable, of 128 bytes, to
// N logs of a set or to one Coordinator's one log (the bar), on the
// test's temporary directory.
func BenchmarkManyWriters(b *testing.B) {
	for _, n := range []int{64, 256} {
		for _, kind := range []string{"set", "one-log"} {
			b.Run(fmt.Sprintf("%s/N=%d", kind, n), func(b *testing.B) {
				cfg := DefaultConfig(b.TempDir())
				var appendTo func(w int, lsn LSN, d []byte) error
				var closeFn func() error
				if kind == "set" {
					s, err := OpenSet(cfg)
					if err != nil {
						b.Fatal(err)
					}
					logs := make([]*Log, n)
					for i := range logs {
						logs[i] = s.Log(uint64(i))
					}
					appendTo = func(w int, lsn LSN, d []byte) error { return logs[w].Append(context.Background(), lsn, d) }
					closeFn = s.Close
				} else {
					c, err := Open(cfg)
					if err != nil {
						b.Fatal(err)
					}
					appendTo = func(_ int, lsn LSN, d []byte) error { return c.Append(context.Background(), lsn, d) }
					closeFn = c.Close
				}
				defer closeFn()
				var wg sync.WaitGroup
				per := b.N/n + 1
				b.ResetTimer()
				for w := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						d := make([]byte, 128)
						for i := range per {
							if err := appendTo(w, LSN(i*n+w+1), d); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}
