//go:build !race && !dwal_invariants

package engine

// invariants is off in release builds: the checks cost nothing there.
const invariants = false
