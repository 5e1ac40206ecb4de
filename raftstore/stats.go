package raftstore

import "github.com/dwal-project/dwal/engine"

// Stats returns the counters of the store's log (entries, bytes written
// with headers and padding, syncs, rotations, latency histograms): for
// metrics (package metrics exports engine.Stats) and operators.
func (s *Store) Stats() engine.Stats { return s.c.Stats() }
