package engine_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/dwal-project/dwal/engine"
)

// Many goroutines append; each call returns once its entry is durable, and
// entries that arrive together share one write and one sync.
func ExampleCoordinator_Append() {
	dir, _ := os.MkdirTemp("", "dwal-example-*")
	defer os.RemoveAll(dir)
	c, err := engine.Open(engine.DefaultConfig(dir))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	var wg sync.WaitGroup
	for i := 1; i <= 8; i++ {
		wg.Add(1)
		go func(lsn engine.LSN) {
			defer wg.Done()
			if err := c.Append(context.Background(), lsn, []byte("event")); err != nil {
				fmt.Println(err)
			}
		}(engine.LSN(i))
	}
	wg.Wait()
	fmt.Println("durable entries:", c.TotalEntriesFlushed())
	// Output: durable entries: 8
}

// Card 1's background flusher: it drains a queue every interval (or at
// once on RequestFlush) and flushes with sync; Shutdown flushes the rest.
func ExampleStartFlushThread() {
	dir, _ := os.MkdirTemp("", "dwal-example-*")
	defer os.RemoveAll(dir)
	c, err := engine.Open(engine.DefaultConfig(dir))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var mu sync.Mutex
	var queue []*engine.PendingEntry
	drain := func() []*engine.PendingEntry {
		mu.Lock()
		defer mu.Unlock()
		q := queue
		queue = nil
		return q
	}
	t := engine.StartFlushThread(c, drain, 5*time.Millisecond)

	e, done := engine.NewSyncEntry(1, []byte("committed"))
	mu.Lock()
	queue = append(queue, e)
	mu.Unlock()
	t.RequestFlush()
	fmt.Println("durable:", done.Wait() == nil)
	t.Shutdown()
	// Output: durable: true
}

// Recovery on start-up: replay from the last checkpoint, then truncate what
// is safe elsewhere.
func ExampleCoordinator_Replay() {
	dir, _ := os.MkdirTemp("", "dwal-example-*")
	defer os.RemoveAll(dir)
	cfg := engine.DefaultConfig(dir)
	c, _ := engine.Open(cfg)
	c.Flush([]*engine.PendingEntry{
		engine.NewAsyncEntry(1, []byte("a")),
		engine.NewAsyncEntry(2, []byte("b")),
		engine.NewAsyncEntry(3, []byte("c")),
	}, true)
	c.Close()

	c, _ = engine.Open(cfg) // a new process: recovery runs here
	defer c.Close()
	c.Replay(2, func(lsn engine.LSN, b []byte) error {
		fmt.Printf("%d=%s\n", lsn, b)
		return nil
	})
	// Output:
	// 2=b
	// 3=c
}
