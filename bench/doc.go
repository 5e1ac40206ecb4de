// Package bench is dwal's benchmark program (the dwalbench command:
// make bench, or go run ./bench/cmd/dwalbench): it runs write-ahead logs
// side by side on one directory's disk and compares them with each other,
// with the least a durable write costs there, and with the device limit
// that fio measures.
//
// # Systems
//
//   - dwal-uring, dwal-fallback (and dwal-auto with --backend auto): Commit
//     is Coordinator.Append (group commit), Flush is Coordinator.Flush(...,
//     true), replay is Open + Replay.
//   - seed: the write path of Card 1's flush coordinator (seed.go): 5-byte
//     segment header, entries appended raw through a 64 KiB buffered
//     writer, flush + fdatasync per batch, rotation at the segment size;
//     concurrent commits reach it through a FlushThread-style drain.
//   - floor-pwrite, floor-pwritev2: aligned O_DIRECT writes into a
//     pre-zeroed file, made durable by fdatasync or by RWF_DSYNC; with C
//     writers each makes its own write durable (no batching).
//   - floor-group: the obvious group commit over the same kind of file
//     (floor_group_linux.go): writers enqueue records, one flusher takes
//     everything queued and makes it durable with one aligned pwrite and
//     one fdatasync, then wakes them: what batching alone buys at C
//     writers.
//   - the peers, in the separate module bench/peers (see peers.go there):
//     pebble's record.LogWriter, etcd's wal, tidwall/wal, hashicorp/raft-wal,
//     each driven as its own users drive it.
//
// The Raft workload (--workloads raft, only when named; raft.go) puts
// hashicorp/raft's log stores side by side in the peers' process: dwal's
// raftstore (and the same without its cache under raft.NewLogCache),
// raft-wal and raft-boltdb v2: StoreLogs latency, GetLog throughput and a
// 3-node cluster in one process (over memory, and over TCP on loopback);
// the main process adds the floor of one 64x128 B write + fdatasync.
//
// The peers are built (go build in bench/peers) into a binary that is this
// package's harness with the peers as its systems; the program runs it once
// per workload with the same settings and merges the JSON it prints. So
// every system is measured by the same code (run.go, load.go), and dwal's go.mod
// carries none of the peers' dependencies.
//
// # Measurement
//
// Each cell (system × workload × writers) gets a fresh directory, opens the
// log and starts its writers and the clock at once, as a user who opens
// the log and writes: nothing waits for background preparation and
// nothing is written unmeasured first. It measures for --duration and closes the log. With
// --warm, a cell marked (warm) follows each one and shows the steady state
// beside it: after Open the log's WarmUp (dwal: WaitPrepared, and only
// there), one op, a wait until the directory's files stop changing, then
// --warmup and (bulk) --bulk-warmup bytes unmeasured. The restart workload
// opens a fresh directory, commits --restart-entries, closes the log,
// reopens the directory as the system's users do at start-up (recovery or
// replay included) and commits as many again; each phase is timed from
// its first op, and how long each Open took is reported.
//
// Latency is per op, recorded in HDR histograms (1 ns to 100 s, 3
// significant digits), from the op's start in closed loop, or with --rate
// from its scheduled start in open loop (as wrk2 does, so a stall is
// charged to every op it delays rather than hidden by coordinated
// omission). Throughput counts the ops completed in the measured window;
// CPU time per entry is the process's getrusage over the window divided by
// its entries; allocations per entry come from runtime/metrics. Replay
// writes --replay-size in synced 1 MiB batches, closes the log, drops its
// files from the page cache (fdatasync + POSIX_FADV_DONTNEED), then times
// reopening and reading every entry.
//
// # Output
//
// A table on stdout (or --format json), with the device limit of
// scripts/fio-limit.sh beside the results and dwal's performance targets
// (see evalTargets) marked PASS, MISS or n/a; <out>/<timestamp>.json and
// <out>/latest.json; PNG plots in <out>: commit latency CDFs at C=1 and
// C=64, rotate latency CDFs, commit throughput against writers (--warm
// cells dashed). --from FILE prints a saved report and redraws its plots.
package bench
