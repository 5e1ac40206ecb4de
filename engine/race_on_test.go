//go:build race

package engine

// raceEnabled: the race detector changes allocation counts (sync.Pool drops
// items on purpose), so allocation tests skip under it.
const raceEnabled = true
