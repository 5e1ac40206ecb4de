package engine

import "fmt"

// assertf panics with an invariant violation when ok is false. Callers
// guard it with `if invariants { ... }`, so release builds compile the
// check (and the work of computing its arguments) away.
func assertf(ok bool, format string, args ...any) {
	if !ok {
		panic("dwal: invariant violated: " + fmt.Sprintf(format, args...))
	}
}
