package engine

import "testing"

// extraBackends adds the backends beyond the fallback (io_uring when this
// machine runs it; memfs).
func extraBackends(t *testing.T) []backend { return nil }
