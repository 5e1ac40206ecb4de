package jepsen

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Outcome is what a client learnt of its operation.
type Outcome int

const (
	// OK: a PUT answered 204, or a GET 200 or 404.
	OK Outcome = iota
	// Failed: the operation had no effect. A PUT answered 307 to the end
	// of its redirects or 503, or its connection was refused (nothing was
	// sent); a GET that did not answer 200 or 404 (a read has no effect).
	Failed
	// Unknown: a PUT that may or may not have been committed (a timeout,
	// a connection broken after the request was sent, a 504).
	Unknown
)

func (o Outcome) String() string { return [...]string{"ok", "failed", "unknown"}[o] }

// Op is one client operation of the history: times in nanoseconds since
// the start of the run.
type Op struct {
	Client    int
	Put       bool
	Key       string
	Value     string // what a PUT wrote (unique per PUT), or a GET read
	Found     bool   // a GET: the key had a value (200, not 404)
	Outcome   Outcome
	Call, Ret int64
}

func (o Op) String() string {
	if o.Put {
		return fmt.Sprintf("client %d: put(%s, %s) %s [%d, %d]", o.Client, o.Key, o.Value, o.Outcome, o.Call, o.Ret)
	}
	v := "(none)"
	if o.Found {
		v = o.Value
	}
	return fmt.Sprintf("client %d: get(%s) = %s %s [%d, %d]", o.Client, o.Key, v, o.Outcome, o.Call, o.Ret)
}

// History collects the operations of every client (safe for concurrent
// use).
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewHistory starts the clock of a history.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the history's clock (monotonic).
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Add records an operation.
func (h *History) Add(o Op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

// Ops returns a copy of the operations recorded.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// register is the state of one key in the model: its value, if any.
type register struct {
	found bool
	value string
}

// Model is the key-value store's sequential specification, one register
// per key (porcupine checks each key's operations alone).
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, o := range h {
			k := o.Input.(Op).Key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], o)
		}
		sort.Strings(keys)
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return register{} },
	Step: func(state, input, output any) (bool, any) {
		st, in := state.(register), input.(Op)
		if in.Put {
			return true, register{found: true, value: in.Value}
		}
		out := output.(Op)
		return out.Found == st.found && (!st.found || out.Value == st.value), st
	},
	DescribeOperation: func(input, output any) string {
		in := input.(Op)
		if in.Put {
			return fmt.Sprintf("put(%s, %s) %s", in.Key, in.Value, in.Outcome)
		}
		out := output.(Op)
		if !out.Found {
			return fmt.Sprintf("get(%s) = none", in.Key)
		}
		return fmt.Sprintf("get(%s) = %s", in.Key, out.Value)
	},
	DescribeState: func(state any) string {
		if st := state.(register); st.found {
			return st.value
		}
		return "(none)"
	},
}

// Prepared is a history ready for the checker, and what was left out.
type Prepared struct {
	Ops                  []porcupine.Operation
	FailedPuts           int // dropped: they had no effect
	FailedGets           int // dropped: a read that failed has no effect
	UnknownPuts          int // kept: someone read their value
	UnknownPutsNeverRead int // dropped: see Prepare
}

// Prepare turns a history into porcupine operations:
//   - operations that failed had no effect and are dropped (a PUT that
//     failed but whose value someone read then makes a violation);
//   - a PUT of unknown outcome may take effect at any time after its call
//     (the standard technique: its return is infinite). When a GET read
//     its value (values are unique) it took effect before that GET
//     returned, so its return becomes the earliest such GET's, which
//     constrains nothing more and spares the checker the search;
//   - a PUT of unknown outcome whose value nobody read is dropped: with an
//     infinite return it could always be linearized after every other
//     operation, where it changes no answer, so it decides nothing.
func Prepare(ops []Op) Prepared {
	readAt := map[string]int64{} // key/value -> earliest return of an OK GET that read it
	for _, o := range ops {
		if !o.Put && o.Outcome == OK && o.Found {
			k := o.Key + "\x00" + o.Value
			if r, ok := readAt[k]; !ok || o.Ret < r {
				readAt[k] = o.Ret
			}
		}
	}
	var p Prepared
	for _, o := range ops {
		ret := o.Ret
		switch {
		case o.Outcome == Failed && o.Put:
			p.FailedPuts++
			continue
		case o.Outcome == Failed:
			p.FailedGets++
			continue
		case o.Outcome == Unknown:
			r, read := readAt[o.Key+"\x00"+o.Value]
			if !read {
				p.UnknownPutsNeverRead++
				continue
			}
			p.UnknownPuts++
			ret = max(r, o.Call)
		}
		p.Ops = append(p.Ops, porcupine.Operation{ClientId: o.Client, Input: o, Call: o.Call, Output: o, Return: ret})
	}
	return p
}
