package errorfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/dwal-project/dwal/engine/vfs"
)

// ErrInjected is wrapped by every error errorfs injects.
var ErrInjected = errors.New("errorfs: injected fault")

// Injector decides whether an op fails. MaybeError is called before the op
// runs (for the sync half of a WriteAt: before the write is submitted, once
// the write itself was let through); a non-nil error makes it fail. Return a
// *Error to choose how it fails (Fault); any other error is wrapped as a
// plain EIO failure with that cause.
//
// Concurrency: MaybeError is called from every goroutine using the FS and
// must be safe for concurrent use. The combinators here are.
type Injector interface {
	MaybeError(op Op) error
}

// InjectorFunc adapts a function to Injector.
type InjectorFunc func(Op) error

// MaybeError implements Injector.
func (f InjectorFunc) MaybeError(op Op) error { return f(op) }

// WriteMode says how an injected fault on an OpWrite shows.
type WriteMode uint8

const (
	// WriteFail: nothing is written; the error wraps the errno (EIO).
	WriteFail WriteMode = iota
	// WriteShort: the first Sectors sectors land, the error wraps
	// vfs.ErrShortWrite and, when a sync was linked, syscall.ECANCELED (as
	// io_uring cancels the FDATASYNC linked to a short WRITE). No errno.
	WriteShort
	// WriteTorn: the first Sectors sectors land, then the device fails; the
	// error wraps the errno (EIO). The linked sync does not run.
	WriteTorn
)

func (m WriteMode) String() string {
	switch m {
	case WriteFail:
		return "fail"
	case WriteShort:
		return "short"
	case WriteTorn:
		return "torn"
	}
	return fmt.Sprintf("WriteMode(%d)", m)
}

// Fault says how an injected failure shows.
type Fault struct {
	// Errno is the cause: syscall.EIO when zero. ENOSPC also wraps
	// vfs.ErrNoSpace, as the backends do.
	Errno syscall.Errno
	// Write applies to OpWrite only; other kinds always fail plainly.
	Write WriteMode
	// Sectors is how many sectors of a short or torn write land (clamped to
	// one less than the write has); 0 means half of them, rounded down.
	Sectors int
}

// On returns an Injector that fails with this fault whenever when fires.
func (f Fault) On(when Injector) Injector {
	return InjectorFunc(func(op Op) error {
		if when.MaybeError(op) == nil {
			return nil
		}
		return &Error{Op: op, Fault: f}
	})
}

// Error is an injected failure. errors.Is matches ErrInjected, the errno
// (syscall.EIO unless Fault.Errno says otherwise; none for a short write),
// vfs.ErrNoSpace for ENOSPC, vfs.ErrShortWrite and syscall.ECANCELED for a
// short write, and Cause.
type Error struct {
	Op    Op
	Fault Fault
	// Landed is how many bytes of a short or torn write reached the file
	// (set by the FS).
	Landed int
	// Cause is the error an Injector returned when it was not an *Error.
	Cause error
}

func (e *Error) errno() syscall.Errno {
	if e.Fault.Errno == 0 {
		return syscall.EIO
	}
	return e.Fault.Errno
}

func (e *Error) short() bool { return e.Op.Kind == OpWrite && e.Fault.Write == WriteShort }

func (e *Error) Error() string {
	msg := fmt.Sprintf("errorfs: injected %v on %v", e.errno(), e.Op)
	if e.Op.Kind == OpWrite && e.Fault.Write != WriteFail {
		msg = fmt.Sprintf("errorfs: injected %s write on %v: %d of %d bytes landed", e.Fault.Write, e.Op, e.Landed, e.Op.Len)
		if e.short() && e.Op.Mode != vfs.NoSync {
			msg += ", linked sync cancelled"
		}
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap lists what errors.Is and errors.As see.
func (e *Error) Unwrap() []error {
	out := []error{ErrInjected}
	if e.short() {
		out = append(out, vfs.ErrShortWrite)
		if e.Op.Mode != vfs.NoSync {
			out = append(out, syscall.ECANCELED)
		}
	} else {
		out = append(out, e.errno())
		if e.errno() == syscall.ENOSPC {
			out = append(out, vfs.ErrNoSpace)
		}
	}
	if e.Cause != nil {
		out = append(out, e.Cause)
	}
	return out
}

// Always fails every op it is asked about (combine with ByKind or ByName).
func Always() Injector {
	return InjectorFunc(func(op Op) error { return &Error{Op: op} })
}

// Index fails the n-th op it is asked about (0-based), once. Made by OnIndex.
type Index struct {
	n    int64
	seen atomic.Int64
}

// OnIndex returns an Injector that fails the n-th op (0-based) it is asked
// about, counting with an atomic counter; n < 0 never fails (a pure counter:
// run a workload once to learn Seen, then pick a crash point below it).
//
// NB: wrapped in ByKind or ByName it counts only the ops that pass the
// filter; wrapped in Any it counts every op.
func OnIndex(n int64) *Index { return &Index{n: n} }

// MaybeError implements Injector.
func (x *Index) MaybeError(op Op) error {
	if x.seen.Add(1)-1 == x.n {
		return &Error{Op: op}
	}
	return nil
}

// Seen returns how many ops the Index was asked about.
func (x *Index) Seen() int64 { return x.seen.Load() }

// ByKind asks inj only about ops of the given kinds; others pass.
func ByKind(inj Injector, kinds ...OpKind) Injector {
	var set [numKinds]bool
	for _, k := range kinds {
		set[k] = true
	}
	return InjectorFunc(func(op Op) error {
		if op.Kind < numKinds && set[op.Kind] {
			return inj.MaybeError(op)
		}
		return nil
	})
}

// ByName asks inj only about ops whose Name or NewName matches pattern
// (path.Match syntax, e.g. "*.log"); others pass. It panics on a malformed
// pattern.
func ByName(inj Injector, pattern string) Injector {
	if _, err := path.Match(pattern, ""); err != nil {
		panic(fmt.Sprintf("errorfs: bad pattern %q: %v", pattern, err))
	}
	match := func(name string) bool {
		ok, _ := path.Match(pattern, name)
		return name != "" && ok
	}
	return InjectorFunc(func(op Op) error {
		if match(op.Name) || match(op.NewName) {
			return inj.MaybeError(op)
		}
		return nil
	})
}

// Randomly fails each op it is asked about with probability p, drawing from
// a generator seeded with seed.
//
// NB: the sequence is reproducible only when the ops arrive in the same
// order, i.e. from one goroutine or with a deterministic schedule.
func Randomly(p float64, seed int64) Injector {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(uint64(seed), 0x2545f4914f6cdd1d))
	return InjectorFunc(func(op Op) error {
		mu.Lock()
		hit := rng.Float64() < p
		mu.Unlock()
		if hit {
			return &Error{Op: op}
		}
		return nil
	})
}

// Any asks every injector, in order, and returns the first error. Every one
// is asked about every op, so counters (OnIndex) advance alike whatever
// fires first.
func Any(injs ...Injector) Injector {
	return InjectorFunc(func(op Op) error {
		var first error
		for _, inj := range injs {
			if err := inj.MaybeError(op); err != nil && first == nil {
				first = err
			}
		}
		return first
	})
}
