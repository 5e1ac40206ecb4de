package align

import "github.com/klauspost/cpuid/v2"

// CacheLine is the CPU's cache-line size in bytes (64 when cpuid cannot
// tell), for padding counters that different goroutines update.
var CacheLine = func() int {
	if n := cpuid.CPU.CacheLine; n > 0 {
		return n
	}
	return 64
}()
