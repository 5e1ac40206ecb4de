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
// The peers are built (go build in bench/peers) into a binary that is this
// package's harness with the peers as its systems; the program runs it once
// per workload with the same settings and merges the JSON it prints. So
// every system is measured by the same code (run.go), and dwal's go.mod
// carries none of the peers' dependencies.
//
// # Measurement
//
// Each cell (system × workload × writers) gets a fresh directory, opens the
// log, makes one op and waits until the directory's files stop changing
// (background preparation done), runs its writers for --warmup unmeasured
// and --duration measured, and closes the log. Latency is per op, recorded
// in HDR histograms (1 ns to 100 s, 3 significant digits), from the op's
// start in closed loop, or with --rate from its scheduled start in open
// loop (as wrk2 does, so a stall is charged to every op it delays rather
// than hidden by coordinated omission). Throughput counts the ops completed
// in the measured window; CPU time per entry is the process's getrusage
// over the window divided by its entries; allocations per entry come from
// runtime/metrics. Replay writes --replay-size in synced 1 MiB batches,
// closes the log, drops its files from the page cache (fdatasync +
// POSIX_FADV_DONTNEED), then times reopening and reading every entry.
//
// # Output
//
// A table on stdout (or --format json), with the device limit of
// scripts/fio-limit.sh beside the results and dwal's performance targets
// (see evalTargets) marked PASS, MISS or n/a; <out>/<timestamp>.json and
// <out>/latest.json; PNG plots in <out>: commit latency CDFs at C=1 and
// C=64, rotate latency CDFs, commit throughput against writers. --from
// FILE prints a saved report and redraws its plots.
package bench
