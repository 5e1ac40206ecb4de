package peers

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/dwal-project/dwal/bench"
	"github.com/dwal-project/dwal/raftstore"
)

// The Raft workload's stores (bench/raft.go says what it measures): dwal's
// raftstore as users open it (its own cache of recent batches), the same
// without that cache under raft.NewLogCache (as raft-wal and raft-boltdb
// users wrap theirs), hashicorp/raft-wal with its BoltDB meta store, and
// raft-boltdb v2. All on the same directory's disk, in this one process.

// raftStore opens one kind of store in a directory.
type raftStore struct {
	name string
	open func(dir string) (raft.LogStore, raft.StableStore, func() error, error)
}

func dwalStore(name string, logCache bool, opts ...raftstore.Option) raftStore {
	return raftStore{name: name, open: func(dir string) (raft.LogStore, raft.StableStore, func() error, error) {
		s, err := raftstore.Open(dir, opts...)
		if err != nil {
			return nil, nil, nil, err
		}
		var ls raft.LogStore = s
		if logCache {
			if ls, err = raft.NewLogCache(raftLogCacheSize, s); err != nil {
				s.Close()
				return nil, nil, nil, err
			}
		}
		return ls, s, s.Close, nil
	}}
}

// raftLogCacheSize is the capacity of the raft.NewLogCache wrappers, as
// Consul and Nomad size theirs.
const raftLogCacheSize = 512

var (
	storeDwal      = dwalStore("raft-dwal", false)
	storeDwalCache = dwalStore("raft-dwal+logcache", true, raftstore.WithCacheSize(0))
	storeWAL       = raftStore{name: "raft-wal", open: func(dir string) (raft.LogStore, raft.StableStore, func() error, error) {
		meta := &metadb.BoltMetaDB{}
		w, err := wal.Open(dir, wal.WithMetaStore(meta))
		if err != nil {
			meta.Close()
			return nil, nil, nil, err
		}
		return w, w, func() error { return errors.Join(w.Close(), meta.Close()) }, nil
	}}
	storeBolt = raftStore{name: "raft-boltdb", open: func(dir string) (raft.LogStore, raft.StableStore, func() error, error) {
		b, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
		if err != nil {
			return nil, nil, nil, err
		}
		return b, b, b.Close, nil
	}}
)

// RaftBench is bench.RaftBench for this binary.
func RaftBench(p bench.RaftParams) []bench.Result {
	var out []bench.Result
	n := 0
	dir := func(what string) string {
		n++
		d := filepath.Join(p.Root, fmt.Sprintf("%02d-%s", n, what))
		os.MkdirAll(d, 0o755)
		return d
	}
	for _, st := range []raftStore{storeDwal, storeWAL, storeBolt} {
		for _, batch := range []int{1, 64} {
			for _, size := range []int{128, 4096} {
				p.Step("raft: %s %s", st.name, bench.StoreLogsPhase(batch, size))
				out = append(out, storeLogsCell(st, dir(st.name), batch, size, p.Duration))
			}
		}
	}
	entries := 200_000
	if p.Quick {
		entries = 20_000
	}
	for _, st := range []raftStore{storeDwal, storeDwalCache, storeWAL, storeBolt} {
		p.Step("raft: %s GetLog", st.name)
		out = append(out, getLogCells(st, dir(st.name), entries, p.Duration)...)
	}
	for _, tcp := range []bool{false, true} {
		for _, st := range []raftStore{storeDwal, storeWAL, storeBolt} {
			p.Step("raft: %s %s", st.name, clusterPhase(tcp))
			out = append(out, clusterCell(st, dir(st.name), p.Duration, tcp))
		}
	}
	for _, ms := range []multiStore{multiSet, multiDirs, multiWAL} {
		p.Step("raft: %s %s", ms.name, MultiRaftPhase())
		out = append(out, multiRaftCell(ms, dir(ms.name), p.Duration))
	}
	return out
}

func failed(st raftStore, phase string, err error) bench.Result {
	r := bench.RaftResult(st.name, phase, 1, 0, 0, 0, 0, nil)
	r.Error = err.Error()
	return r
}

func benchLogs(first uint64, batch, size int, data []byte) []*raft.Log {
	ls := make([]*raft.Log, batch)
	for i := range ls {
		ls[i] = &raft.Log{Index: first + uint64(i), Term: 1, Type: raft.LogCommand, Data: data[:size], AppendedAt: time.Now()}
	}
	return ls
}

// storeLogsCell: StoreLogs of batch entries of size bytes, one call after
// the other (raft's leader loop makes them serially), for d.
func storeLogsCell(st raftStore, dir string, batch, size int, d time.Duration) bench.Result {
	phase := bench.StoreLogsPhase(batch, size)
	ls, _, closeFn, err := st.open(dir)
	if err != nil {
		return failed(st, phase, err)
	}
	defer closeFn()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	rec := bench.NewRecorder()
	next := uint64(1)
	var ops int64
	start := time.Now()
	for time.Since(start) < d {
		logs := benchLogs(next, batch, size, data)
		t0 := time.Now()
		if err := ls.StoreLogs(logs); err != nil {
			return failed(st, phase, err)
		}
		rec.Record(0, time.Since(t0))
		next += uint64(batch)
		ops++
	}
	return bench.RaftResult(st.name, phase, 1, size, batch, ops, time.Since(start), rec)
}

// getLogCells: the log filled with entries of 128 B (batches of 64), then
// GetLog of random indexes from 4 readers for d (reopened first, so no
// cache holds them), and GetLog of the 64 entries just stored, batch after
// batch, as a leader's replication reads what its loop wrote.
func getLogCells(st raftStore, dir string, entries int, d time.Duration) []bench.Result {
	const size, batch, readers = 128, 64, 4
	random, recent := "GetLog random", "GetLog of the batch just written"
	ls, _, closeFn, err := st.open(dir)
	if err != nil {
		return []bench.Result{failed(st, random, err)}
	}
	data := make([]byte, size)
	next := uint64(1)
	for next <= uint64(entries) {
		if err := ls.StoreLogs(benchLogs(next, batch, size, data)); err != nil {
			closeFn()
			return []bench.Result{failed(st, random, err)}
		}
		next += batch
	}
	closeFn()
	if ls, _, closeFn, err = st.open(dir); err != nil {
		return []bench.Result{failed(st, random, err)}
	}
	defer closeFn()
	last := next - 1

	rec := bench.NewRecorder()
	var ops atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			var l raft.Log
			for time.Since(start) < d {
				i := 1 + rng.Uint64N(last)
				t0 := time.Now()
				if err := ls.GetLog(i, &l); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				rec.Record(r, time.Since(t0))
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	out := []bench.Result{bench.RaftResult(st.name, random, readers, size, 1, ops.Load(), time.Since(start), rec)}
	if err, _ := firstErr.Load().(error); err != nil {
		out[0].Error = err.Error()
	}

	rec = bench.NewRecorder()
	var n int64
	var elapsed time.Duration
	for begin := time.Now(); time.Since(begin) < d; {
		if err := ls.StoreLogs(benchLogs(next, batch, size, data)); err != nil {
			return append(out, failed(st, recent, err))
		}
		var l raft.Log
		t0 := time.Now()
		for i := next; i < next+batch; i++ {
			t1 := time.Now()
			if err := ls.GetLog(i, &l); err != nil {
				return append(out, failed(st, recent, err))
			}
			rec.Record(0, time.Since(t1))
			n++
		}
		elapsed += time.Since(t0)
		next += batch
	}
	return append(out, bench.RaftResult(st.name, recent, 1, size, 1, n, elapsed, rec))
}

// clusterPhase names a cluster cell.
func clusterPhase(tcp bool) string {
	if tcp {
		return fmt.Sprintf("3-node cluster over TCP, %d clients", clusterClients)
	}
	return fmt.Sprintf("3-node cluster, %d clients", clusterClients)
}

const clusterClients = 64

// clusterCell: three raft nodes in this process, each on a store of kind
// st in its own directory, applying 128-byte commands from 64 clients on
// the leader for d: commands/s, apply latency. The nodes talk over
// raft.NewInmemTransport, or with tcp over raft.NewTCPTransport on
// 127.0.0.1 (msgpack over loopback sockets, as separate processes would).
func clusterCell(st raftStore, dir string, d time.Duration, tcp bool) bench.Result {
	const clients, size = clusterClients, 128
	phase := clusterPhase(tcp)
	type member struct {
		r     *raft.Raft
		close func() error
		trans raft.Transport
	}
	var ms []*member
	defer func() {
		for _, m := range ms {
			m.r.Shutdown().Error()
			if c, ok := m.trans.(io.Closer); ok {
				c.Close()
			}
			m.close()
		}
	}()
	var servers []raft.Server
	for i := range 3 {
		id := raft.ServerID(fmt.Sprintf("n%d", i))
		ndir := filepath.Join(dir, string(id))
		os.MkdirAll(ndir, 0o755)
		ls, ss, closeFn, err := st.open(ndir)
		if err != nil {
			return failed(st, phase, err)
		}
		snaps, err := raft.NewFileSnapshotStore(ndir, 2, io.Discard)
		if err != nil {
			closeFn()
			return failed(st, phase, err)
		}
		addr, trans, err := clusterTransport(id, tcp)
		if err != nil {
			closeFn()
			return failed(st, phase, err)
		}
		conf := raft.DefaultConfig()
		conf.LocalID = id
		conf.LogOutput = io.Discard
		conf.HeartbeatTimeout = 200 * time.Millisecond
		conf.ElectionTimeout = 200 * time.Millisecond
		conf.LeaderLeaseTimeout = 100 * time.Millisecond
		r, err := raft.NewRaft(conf, &countFSM{}, ls, ss, snaps, trans)
		if err != nil {
			closeFn()
			return failed(st, phase, err)
		}
		ms = append(ms, &member{r: r, close: closeFn, trans: trans})
		servers = append(servers, raft.Server{ID: id, Address: addr})
	}
	for _, a := range ms {
		for j, b := range ms {
			ia, ok1 := a.trans.(*raft.InmemTransport)
			ib, ok2 := b.trans.(*raft.InmemTransport)
			if a != b && ok1 && ok2 {
				ia.Connect(servers[j].Address, ib)
			}
		}
	}
	if err := ms[0].r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return failed(st, phase, err)
	}
	var leader *raft.Raft
	for deadline := time.Now().Add(10 * time.Second); leader == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, m := range ms {
			if m.r.State() == raft.Leader {
				leader = m.r
			}
		}
	}
	if leader == nil {
		return failed(st, phase, errors.New("no leader elected within 10s"))
	}
	return applyLoad(st.name, phase, clients, size, d, func(int) *raft.Raft { return leader })
}

// applyLoad has clients apply commands of size bytes for d, client c on
// leaderOf(c), and returns the cell's result: commands/s, their latency,
// the first error.
func applyLoad(system, phase string, clients, size int, d time.Duration, leaderOf func(c int) *raft.Raft) bench.Result {
	rec := bench.NewRecorder()
	var ops atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leader := leaderOf(c)
			cmd := make([]byte, size)
			for time.Since(start) < d {
				t0 := time.Now()
				if err := leader.Apply(cmd, 10*time.Second).Error(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				rec.Record(c, time.Since(t0))
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	res := bench.RaftResult(system, phase, clients, size, 1, ops.Load(), time.Since(start), rec)
	if err, _ := firstErr.Load().(error); err != nil {
		res.Error = err.Error()
	}
	return res
}

// clusterTransport is one node's transport: in memory, or TCP on a free
// loopback port.
func clusterTransport(id raft.ServerID, tcp bool) (raft.ServerAddress, raft.Transport, error) {
	if !tcp {
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		return addr, trans, nil
	}
	trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
	if err != nil {
		return "", nil, err
	}
	return trans.LocalAddr(), trans, nil
}

// countFSM applies commands by counting them.
type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) any { return f.n.Add(1) }

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return countSnap(f.n.Load()), nil }

func (f *countFSM) Restore(r io.ReadCloser) error { return r.Close() }

type countSnap uint64

func (s countSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := fmt.Fprint(sink, uint64(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (countSnap) Release() {}
