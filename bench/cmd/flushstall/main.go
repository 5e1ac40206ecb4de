//go:build linux

// Command flushstall (Linux) looks for periodic stalls in a disk's durable
// writes: W goroutines each write 4 KiB with O_DIRECT into a pre-written
// file and make it durable (pwrite + fdatasync, or pwritev2 RWF_DSYNC); the
// writes slower than -slow are counted and grouped into stalls. A throttled
// virtual disk shows up as stalls at a fixed period.
//
//	go run ./bench/cmd/flushstall -dir /mnt/x -writers 4
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dwal-project/dwal/bench"
	"github.com/dwal-project/dwal/engine/align"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to probe")
	writers := flag.Int("writers", 4, "goroutines writing at once")
	dsync := flag.Bool("dsync", false, "pwritev2(RWF_DSYNC) instead of pwrite + fdatasync")
	dur := flag.Duration("duration", 3*time.Second, "how long to write")
	slow := flag.Duration("slow", 8*time.Millisecond, "a write slower than this is a stall")
	flag.Parse()
	if *writers <= 0 || *dur <= 0 || *slow <= 0 {
		fmt.Fprintln(os.Stderr, "flushstall: -writers, -duration and -slow must be positive")
		os.Exit(2)
	}
	if err := run(*dir, *writers, *dsync, *dur, *slow); err != nil {
		fmt.Fprintln(os.Stderr, "flushstall:", err)
		os.Exit(1)
	}
}

const fileSize = 64 << 20

func run(dir string, writers int, dsync bool, dur, slow time.Duration) error {
	path := filepath.Join(dir, fmt.Sprintf("flushstall-%d.tmp", os.Getpid()))
	f, a, err := bench.OpenPreZeroed(path, fileSize)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	fd := int(f.Fd())

	var (
		ops    atomic.Int64
		mu     sync.Mutex
		stalls []time.Duration // start times, from the beginning
		worst  time.Duration
		wg     sync.WaitGroup
		ferr   error
		once   sync.Once
	)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := align.Alloc(a, a) // 4 KiB, or the device's larger alignment
			iov := [][]byte{buf}
			for i := 0; time.Since(start) < dur; i++ {
				off := int64((i*writers+w)%(fileSize/a)) * int64(a)
				t0 := time.Now()
				var err error
				if dsync {
					_, err = unix.Pwritev2(fd, iov, off, unix.RWF_DSYNC)
				} else if _, err = unix.Pwrite(fd, buf, off); err == nil {
					err = unix.Fdatasync(fd)
				}
				if err != nil {
					once.Do(func() { ferr = err })
					return
				}
				ops.Add(1)
				if d := time.Since(t0); d > slow {
					mu.Lock()
					stalls = append(stalls, t0.Sub(start))
					worst = max(worst, d)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	el := time.Since(start)
	how := "pwrite+fdatasync"
	if dsync {
		how = "pwritev2(RWF_DSYNC)"
	}
	fmt.Printf("%s, %d writer(s), %v: %.0f durable %d-byte writes/s, %d slower than %v (worst %v)\n",
		how, writers, dur, float64(ops.Load())/el.Seconds(), a, len(stalls), slow, worst.Round(time.Millisecond))
	// Slow writes that start within 2*slow of each other are one stall.
	slices.Sort(stalls)
	var starts []time.Duration
	for i, s := range stalls {
		if i == 0 || s-stalls[i-1] > 2*slow {
			starts = append(starts, s)
		}
	}
	if len(starts) > 1 {
		gaps := make([]time.Duration, len(starts)-1)
		for i := range gaps {
			gaps[i] = starts[i+1] - starts[i]
		}
		slices.Sort(gaps)
		fmt.Printf("%d stalls, median %v apart (first at %v)\n", len(starts), gaps[len(gaps)/2].Round(time.Millisecond), starts[0].Round(time.Millisecond))
	}
	return nil
}
