package raftstore_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dwal-project/dwal/raftstore"
	"github.com/hashicorp/raft"
)

// kvFSM is a tiny state machine: the last command applied.
type kvFSM struct{ last string }

func (f *kvFSM) Apply(l *raft.Log) any               { f.last = string(l.Data); return nil }
func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("not in this example") }
func (f *kvFSM) Restore(r io.ReadCloser) error       { return r.Close() }

// A single raft node whose log and stable store are one dwal directory.
func Example() {
	dir, _ := os.MkdirTemp("", "raftstore-example-")
	defer os.RemoveAll(dir)

	store, err := raftstore.Open(filepath.Join(dir, "raft")) // the log and the stable store
	if err != nil {
		panic(err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		panic(err)
	}
	addr, trans := raft.NewInmemTransport("")
	conf := raft.DefaultConfig()
	conf.LocalID = "node1"
	conf.LogOutput = io.Discard
	conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond

	fsm := &kvFSM{}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
	if err != nil {
		panic(err)
	}
	defer func() { r.Shutdown().Error() }() // Error waits until raft has stopped using the store
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}).Error(); err != nil {
		panic(err)
	}
	for r.State() != raft.Leader {
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Apply([]byte("hello, dwal"), time.Second).Error(); err != nil {
		panic(err)
	}
	last, _ := store.LastIndex()
	fmt.Println("applied:", fsm.last)
	fmt.Println("durable in the log up to index", last)
	// Output:
	// applied: hello, dwal
	// durable in the log up to index 3
}

// Many raft groups (multi-raft) in one directory: each group's log and
// stable store are one group of a SetStore, and the groups' StoreLogs
// share its syncs.
func ExampleOpenSet() {
	dir, _ := os.MkdirTemp("", "raftstore-example-")
	defer os.RemoveAll(dir)

	set, err := raftstore.OpenSet(filepath.Join(dir, "raft")) // every group's log and stable store
	if err != nil {
		panic(err)
	}
	defer set.Close() // after the rafts are shut down (defers run last first)
	for g := range uint64(3) {
		store := set.Group(g)
		snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, fmt.Sprintf("snapshots-%d", g)), 2, io.Discard)
		if err != nil {
			panic(err)
		}
		addr, trans := raft.NewInmemTransport("")
		conf := raft.DefaultConfig()
		conf.LocalID = "node1"
		conf.LogOutput = io.Discard
		conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond

		fsm := &kvFSM{}
		r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
		if err != nil {
			panic(err)
		}
		defer func() { r.Shutdown().Error() }()
		if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}).Error(); err != nil {
			panic(err)
		}
		for r.State() != raft.Leader {
			time.Sleep(10 * time.Millisecond)
		}
		if err := r.Apply(fmt.Appendf(nil, "hello, group %d", g), time.Second).Error(); err != nil {
			panic(err)
		}
		fmt.Println("applied:", fsm.last)
	}
	fmt.Println("groups in the set:", set.Groups())
	// Output:
	// applied: hello, group 0
	// applied: hello, group 1
	// applied: hello, group 2
	// groups in the set: [0 1 2]
}
