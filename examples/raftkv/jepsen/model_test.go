package jepsen

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

func put(client int, key, val string, o Outcome, call, ret int64) Op {
	return Op{Client: client, Put: true, Key: key, Value: val, Outcome: o, Call: call, Ret: ret}
}

func get(client int, key, val string, found bool, call, ret int64) Op {
	return Op{Client: client, Key: key, Value: val, Found: found, Outcome: OK, Call: call, Ret: ret}
}

// TestModel: the checker, on histories whose answer is known, with the
// treatment of failed and unknown operations (Prepare).
func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"sequential", []Op{get(0, "a", "", false, 0, 1), put(0, "a", "1", OK, 2, 3), get(1, "a", "1", true, 4, 5)}, porcupine.Ok},
		{"stale read", []Op{put(0, "a", "1", OK, 0, 10), put(0, "a", "2", OK, 20, 30), get(1, "a", "1", true, 40, 50)}, porcupine.Illegal},
		{"read of nothing after an acknowledged put", []Op{put(0, "a", "1", OK, 0, 10), get(1, "a", "", false, 20, 30)}, porcupine.Illegal},
		{"concurrent put either way", []Op{put(0, "a", "1", OK, 0, 100), get(1, "a", "", false, 10, 20), get(2, "a", "1", true, 30, 40)}, porcupine.Ok},
		{"reads going back in time", []Op{put(0, "a", "1", OK, 0, 100), get(1, "a", "1", true, 10, 20), get(2, "a", "", false, 30, 40)}, porcupine.Illegal},
		{"unknown put read later", []Op{put(0, "a", "1", Unknown, 0, 10), get(1, "a", "1", true, 1000, 1010)}, porcupine.Ok},
		{"unknown put read, then gone", []Op{put(0, "a", "1", Unknown, 0, 10), get(1, "a", "1", true, 100, 110), get(1, "a", "", false, 200, 210)}, porcupine.Illegal},
		{"unknown put read before its call", []Op{get(1, "a", "1", true, 0, 10), put(0, "a", "1", Unknown, 20, 30)}, porcupine.Illegal},
		{"unknown put never read", []Op{put(0, "a", "1", OK, 0, 10), put(0, "a", "2", Unknown, 20, 30), get(1, "a", "1", true, 40, 50)}, porcupine.Ok},
		{"failed put read", []Op{put(0, "a", "1", Failed, 0, 10), get(1, "a", "1", true, 20, 30)}, porcupine.Illegal},
		{"a value never written", []Op{put(0, "a", "1", OK, 0, 10), get(1, "a", "9", true, 20, 30)}, porcupine.Illegal},
		{"keys apart", []Op{put(0, "a", "1", OK, 0, 10), put(1, "b", "2", OK, 0, 10), get(2, "a", "1", true, 20, 30), get(2, "b", "2", true, 20, 30)}, porcupine.Ok},
		{"failed gets dropped", []Op{put(0, "a", "1", OK, 0, 10), {Client: 1, Key: "a", Outcome: Failed, Call: 20, Ret: 30}}, porcupine.Ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Prepare(tc.ops)
			if got := porcupine.CheckOperations(Model, p.Ops); (got && tc.want != porcupine.Ok) || (!got && tc.want == porcupine.Ok) {
				t.Fatalf("linearizable: %v, want %s", got, tc.want)
			}
		})
	}
}

// TestPrepareCounts: what Prepare leaves out, and the return it gives an
// unknown put that was read.
func TestPrepareCounts(t *testing.T) {
	p := Prepare([]Op{
		put(0, "a", "1", Failed, 0, 10),
		put(0, "a", "2", Unknown, 20, 30),
		put(0, "a", "3", Unknown, 40, 50),
		get(1, "a", "3", true, 300, 400),
		get(2, "a", "3", true, 200, 350),
		{Client: 1, Key: "a", Outcome: Failed, Call: 60, Ret: 70},
	})
	if p.FailedPuts != 1 || p.FailedGets != 1 || p.UnknownPuts != 1 || p.UnknownPutsNeverRead != 1 || len(p.Ops) != 3 {
		t.Fatalf("prepared %+v", p)
	}
	if p.Ops[0].Input.(Op).Value != "3" || p.Ops[0].Return != 350 {
		t.Fatalf("the unknown put read by two gets returns at %d, want the earliest get's return 350", p.Ops[0].Return)
	}
}
