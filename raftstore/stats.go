package raftstore

import "github.com/dwal-project/dwal/engine"

// Stats returns the counters of the store's log (entries, bytes written
// with headers and padding, syncs, rotations, latency histograms): for
// metrics (package metrics exports engine.Stats) and operators. A group's
// store (SetStore.Group) returns its set's: the counters of the stream
// every group writes.
func (s *Store) Stats() engine.Stats { return s.stats() }
