package peers

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dwal-project/dwal/bench"
	"github.com/dwal-project/dwal/raftstore"
)

// Multi-raft: 16 raft groups of 3 nodes in this process (in-memory
// transport), every node holding one member of each group, 64 clients
// spread over the groups' leaders, 128-byte commands: commands/s of the
// whole. The stores: each node's 16 groups on one dwal set
// (raftstore.OpenSet, one stream and one sync for all of them), the same
// on 16 raftstore directories per node, and on 16 raft-wal stores per node.

const (
	multiGroups  = 16
	multiClients = 64
)

// multiStore opens the stores of one node's groups.
type multiStore struct {
	name string
	// open returns group g's stores, and a close for the whole node.
	open func(dir string, groups int) (stores []raftPair, closeAll func() error, err error)
}

type raftPair struct {
	ls raft.LogStore
	ss raft.StableStore
}

var (
	multiSet = multiStore{name: "raft-dwal-set", open: func(dir string, groups int) ([]raftPair, func() error, error) {
		s, err := raftstore.OpenSet(dir)
		if err != nil {
			return nil, nil, err
		}
		var out []raftPair
		for g := range groups {
			st := s.Group(uint64(g))
			out = append(out, raftPair{st, st})
		}
		return out, s.Close, nil
	}}
	multiDirs = multiStore{name: "raft-dwal", open: perGroup(storeDwal)}
	multiWAL  = multiStore{name: "raft-wal", open: perGroup(storeWAL)}
)

// perGroup opens a store of kind st per group, each in a directory of its
// own under dir.
func perGroup(st raftStore) func(dir string, groups int) ([]raftPair, func() error, error) {
	return func(dir string, groups int) ([]raftPair, func() error, error) {
		var out []raftPair
		var closers []func() error
		closeAll := func() error {
			var err error
			for _, c := range closers {
				err = errors.Join(err, c())
			}
			return err
		}
		for g := range groups {
			gdir := filepath.Join(dir, fmt.Sprintf("g%02d", g))
			if err := os.MkdirAll(gdir, 0o755); err != nil {
				closeAll()
				return nil, nil, err
			}
			ls, ss, closeFn, err := st.open(gdir)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			closers = append(closers, closeFn)
			out = append(out, raftPair{ls, ss})
		}
		return out, closeAll, nil
	}
}

// MultiRaftPhase names the multi-raft cell.
func MultiRaftPhase() string {
	return fmt.Sprintf("multi-raft: %d groups x 3 nodes, %d clients", multiGroups, multiClients)
}

// multiRaftCell runs the multi-raft cluster on stores of kind ms for d.
func multiRaftCell(ms multiStore, dir string, d time.Duration) bench.Result {
	const size = 128
	phase := MultiRaftPhase()
	fail := func(err error) bench.Result {
		return bench.Result{Workload: "raft", System: ms.name, Phase: phase, Process: "peers", Error: err.Error()}
	}
	type node struct {
		rafts    []*raft.Raft
		closeAll func() error
	}
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			for _, r := range n.rafts {
				r.Shutdown().Error()
			}
			n.closeAll()
		}
	}()
	// groups[g][i]: node i's member of group g.
	trans := make([][]*raft.InmemTransport, multiGroups)
	addrs := make([][]raft.ServerAddress, multiGroups)
	for g := range multiGroups {
		for i := range 3 {
			a, t := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("g%d-n%d", g, i)))
			trans[g] = append(trans[g], t)
			addrs[g] = append(addrs[g], a)
		}
		for i := range 3 {
			for j := range 3 {
				if i != j {
					trans[g][i].Connect(addrs[g][j], trans[g][j])
				}
			}
		}
	}
	for i := range 3 {
		ndir := filepath.Join(dir, fmt.Sprintf("n%d", i))
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return fail(err)
		}
		stores, closeAll, err := ms.open(ndir, multiGroups)
		if err != nil {
			return fail(err)
		}
		n := &node{closeAll: closeAll}
		nodes = append(nodes, n)
		for g := range multiGroups {
			conf := raft.DefaultConfig()
			conf.LocalID = raft.ServerID(addrs[g][i])
			conf.LogOutput = io.Discard
			conf.HeartbeatTimeout = 300 * time.Millisecond
			conf.ElectionTimeout = 300 * time.Millisecond
			conf.LeaderLeaseTimeout = 150 * time.Millisecond
			r, err := raft.NewRaft(conf, &countFSM{}, stores[g].ls, stores[g].ss, raft.NewInmemSnapshotStore(), trans[g][i])
			if err != nil {
				return fail(err)
			}
			n.rafts = append(n.rafts, r)
		}
	}
	leaders := make([]*raft.Raft, multiGroups)
	for g := range multiGroups {
		var servers []raft.Server
		for i := range 3 {
			servers = append(servers, raft.Server{ID: raft.ServerID(addrs[g][i]), Address: addrs[g][i]})
		}
		// Bootstrap on node g%3, so the leaders spread over the nodes.
		if err := nodes[g%3].rafts[g].BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			return fail(err)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		missing := 0
		for g := range multiGroups {
			leaders[g] = nil
			for _, n := range nodes {
				if n.rafts[g].State() == raft.Leader {
					leaders[g] = n.rafts[g]
				}
			}
			if leaders[g] == nil {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("%d of %d groups without a leader after 20s", missing, multiGroups))
		}
	}
	return applyLoad(ms.name, phase, multiClients, size, d, func(c int) *raft.Raft { return leaders[c%multiGroups] })
}
