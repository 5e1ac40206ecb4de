package peers

import (
	"strings"
	"testing"
	"time"

	"github.com/dwal-project/dwal/bench"
)

// TestRaftBenchRuns: every cell of the Raft workload runs on every store
// and measures something (a short smoke run: the numbers are not judged).
func TestRaftBenchRuns(t *testing.T) {
	rs := RaftBench(bench.RaftParams{Root: t.TempDir(), Duration: 50 * time.Millisecond, Quick: true, Step: func(string, ...any) {}})
	cells := map[string]bool{}
	for _, r := range rs {
		if r.Error != "" || r.Skipped != "" {
			t.Errorf("%s %s: %s%s", r.System, r.Phase, r.Error, r.Skipped)
			continue
		}
		if r.Ops <= 0 || r.Latency.Count != r.Ops && !strings.HasPrefix(r.Phase, "GetLog of") {
			t.Errorf("%s %s: %d ops, %d latencies", r.System, r.Phase, r.Ops, r.Latency.Count)
		}
		cells[r.System+" "+r.Phase] = true
	}
	for _, want := range []string{"raft-dwal StoreLogs 64x128B", "raft-wal StoreLogs 1x4096B", "raft-boltdb GetLog random",
		"raft-dwal+logcache GetLog of the batch just written", "raft-dwal 3-node cluster, 64 clients", "raft-boltdb 3-node cluster, 64 clients",
		"raft-dwal 3-node cluster over TCP, 64 clients", "raft-wal 3-node cluster over TCP, 64 clients"} {
		if !cells[want] {
			t.Errorf("no result for %q", want)
		}
	}
}
