package engine

// logState is what the durable log-state record (segment.State, the file
// log.state) says is deleted, in memory.
type logState struct {
	first LSN    // entries with a smaller LSN are deleted (0: none)
	base  uint64 // segments with a smaller ID are deleted whole
	cuts  []cut  // by ascending below
	floor uint64 // the next segment's ID is at least this
	user  []byte // the caller's record (SetUserRecord)
}

// cut: entries with LSN > after in segments with ID < below are deleted.
type cut struct {
	after LSN
	below uint64
}

// ceiling is the largest LSN that may be live in segment seg (ok false:
// no cut applies to it).
func (s *logState) ceiling(seg uint64) (LSN, bool) {
	var c LSN
	ok := false
	for _, k := range s.cuts {
		if seg < k.below && (!ok || k.after < c) {
			c, ok = k.after, true
		}
	}
	return c, ok
}

// live reports whether entry lsn of segment seg is not deleted.
func (s *logState) live(seg uint64, lsn LSN) bool {
	if seg < s.base || lsn < s.first {
		return false
	}
	c, ok := s.ceiling(seg)
	return !ok || lsn <= c
}

// narrow clips r's range to what may be live and reports whether anything
// may be; a clipped range is marked loose.
func (s *logState) narrow(r *batchRef) bool {
	if r.seg < s.base {
		return false
	}
	lo, hi := max(r.min, s.first), r.max
	if c, ok := s.ceiling(r.seg); ok {
		hi = min(hi, c)
	}
	if lo > hi {
		return false
	}
	if lo != r.min || hi != r.max {
		r.min, r.max, r.loose = lo, hi, true
	}
	return true
}

// segmentDead reports whether segment id holds no live entry: it lies
// below the base, or its LSN range m (when known) lies wholly below the
// first LSN or above its ceiling.
func (s *logState) segmentDead(id uint64, m *SegmentMetadata) bool {
	if id < s.base {
		return true
	}
	if m == nil || m.EntryCount == 0 {
		return false
	}
	if m.MaxLSN < s.first {
		return true
	}
	c, ok := s.ceiling(id)
	return ok && m.MinLSN > c
}
