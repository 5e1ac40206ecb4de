//go:build race || dwal_invariants

package engine

// invariants turns on the engine's invariant checks (pipeline.check, the
// frontier's, the index's, the log state's): under the race detector, as
// `make test` runs the suite, and with the dwal_invariants build tag.
const invariants = true
