// Package peers drives the peer write-ahead logs of dwal's benchmark, each
// the way its own users drive it, behind the harness's bench.System:
//
//   - pebble: github.com/cockroachdb/pebble/v2/record LogWriter on a
//     vfs.NewSyncingFile (as Pebble's WAL manager makes it), commits as
//     Pebble's commit pipeline does (a slot of the sync-queue semaphore,
//     SyncRecord under a mutex, then wait on the WaitGroup);
//   - etcd: go.etcd.io/etcd/server/v3/storage/wal, Save(HardState, entries)
//     from one goroutine as etcd's raft node does, concurrent commits
//     funnelled into it;
//   - tidwall: github.com/tidwall/wal with NoSync false, WriteBatch of
//     consecutive indexes, concurrent commits funnelled into it;
//   - raftwal: github.com/hashicorp/raft-wal StoreLogs, concurrent commits
//     funnelled into batches of at most 1 + 64 logs, as hashicorp/raft's
//     leader loop gathers them (MaxAppendEntries 64).
//
// The Raft workload (raft.go) runs hashicorp/raft's log stores here too:
// dwal's raftstore, raft-wal and raft-boltdb v2, under raft itself.
//
// Each reopens its directory (the restart workload) as its users' process
// does when it restarts: pebble replays its WAL and starts the next WAL
// file, etcd opens its WAL and reads it all before appending, tidwall/wal
// and raft-wal open their logs and go on after the last index.
//
// This module is separate from dwal's so that dwal's go.mod carries none of
// these dependencies; its binary, cmd/peerbench, is run by the bench program.
package peers

import (
	"runtime/debug"
	"strings"

	"github.com/dwal-project/dwal/bench"
)

// Systems returns the peers.
func Systems() []bench.System {
	return []bench.System{pebbleSystem{}, etcdSystem{}, tidwallSystem{}, raftwalSystem{}}
}

// modules are the peers' module paths, for Versions.
var modules = []string{
	"github.com/cockroachdb/pebble",
	"go.etcd.io/etcd/server/v3",
	"github.com/tidwall/wal",
	"github.com/hashicorp/raft-wal",
	"github.com/hashicorp/raft-boltdb/v2",
	"github.com/hashicorp/raft",
}

// Versions returns the peer modules this binary was built with.
func Versions() map[string]string {
	out := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	for _, d := range bi.Deps {
		for _, m := range modules {
			if d.Path == m || strings.HasPrefix(d.Path, m+"/") {
				out[d.Path] = d.Version
			}
		}
	}
	return out
}

// funnelBytes caps a funnelled batch as dwal caps a group-commit batch.
const funnelBytes = 4 << 20
