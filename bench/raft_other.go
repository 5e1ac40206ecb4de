//go:build !linux

package bench

// raftFloor needs Linux (O_DIRECT): elsewhere it says so.
func raftFloor(*Options, *runParams, *progress) []Result {
	return []Result{{Workload: wlRaft, System: "floor", Phase: StoreLogsPhase(64, 128), Process: "main",
		Skipped: "the floor needs Linux (O_DIRECT)"}}
}
