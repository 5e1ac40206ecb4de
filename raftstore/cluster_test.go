package raftstore

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwal-project/dwal/engine"
	"github.com/hashicorp/raft"
)

// The 3-node cluster test: raft over three raftstore directories, in one
// process (raft.NewInmemTransport, raft.NewFileSnapshotStore), with an FSM
// that hashes every command it applies. Bootstrap, election, 20k commands
// from concurrent clients, snapshots that compact the logs, a leader cut
// off while it holds entries nobody else has (its suffix must go when it
// rejoins), a follower and then the leader restarted from their
// directories; at the end every FSM has applied the same commands in the
// same order (same hash, same count).

// hashFSM chains a SHA-256 over every command applied. A command
// "cmd-N" applied before is skipped (every node skips it alike): apply
// sends a command again when the leader changed under it, and the first
// one may have been committed too.
type hashFSM struct {
	mu       sync.Mutex
	sum      [32]byte
	n        uint64
	index    uint64
	seen     map[uint64]bool // the N of every cmd-N applied
	restores int             // snapshots restored into it
}

func (f *hashFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Index <= f.index {
		panic(fmt.Sprintf("FSM applied index %d after %d", l.Index, f.index))
	}
	f.index = l.Index
	var num uint64
	if _, err := fmt.Sscanf(string(l.Data), "cmd-%d", &num); err == nil {
		if f.seen[num] {
			return f.n
		}
		if f.seen == nil {
			f.seen = map[uint64]bool{}
		}
		f.seen[num] = true
	}
	h := sha256.New()
	h.Write(f.sum[:])
	h.Write(l.Data)
	copy(f.sum[:], h.Sum(nil))
	f.n++
	return f.n
}

func (f *hashFSM) state() ([32]byte, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sum, f.n
}

func (f *hashFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &hashSnap{sum: f.sum, n: f.n, index: f.index, seen: slices.Sorted(maps.Keys(f.seen))}, nil
}

func (f *hashFSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(b) < 48 {
		return fmt.Errorf("a snapshot of %d bytes", len(b))
	}
	seen := map[uint64]bool{}
	for p, prev := b[48:], uint64(0); len(p) > 0; {
		d, w := binary.Uvarint(p)
		if w <= 0 {
			return errors.New("a malformed snapshot")
		}
		prev += d
		seen[prev] = true
		p = p[w:]
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	copy(f.sum[:], b[:32])
	f.n = binary.LittleEndian.Uint64(b[32:])
	f.index = binary.LittleEndian.Uint64(b[40:])
	f.seen = seen
	f.restores++
	return nil
}

func (f *hashFSM) restored() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restores
}

// hashSnap is | sum 32 | n u64 | index u64 | the seen Ns as ascending
// uvarint deltas |.
type hashSnap struct {
	sum      [32]byte
	n, index uint64
	seen     []uint64
}

func (s *hashSnap) Persist(sink raft.SnapshotSink) error {
	b := make([]byte, 48, 48+2*len(s.seen))
	copy(b, s.sum[:])
	binary.LittleEndian.PutUint64(b[32:], s.n)
	binary.LittleEndian.PutUint64(b[40:], s.index)
	prev := uint64(0)
	for _, v := range s.seen {
		b = binary.AppendUvarint(b, v-prev)
		prev = v
	}
	if _, err := sink.Write(b); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *hashSnap) Release() {}

// node is one member of the cluster.
type node struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	dir   string
	store *Store
	snaps *raft.FileSnapshotStore
	trans *raft.InmemTransport
	fsm   *hashFSM
	r     *raft.Raft
}

type cluster struct {
	t     *testing.T
	nodes []*node
	// wrap, when set, puts raft's log store around each node's Store (as
	// raft.NewLogCache does).
	wrap func(*Store) raft.LogStore
}

func clusterConfig(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	// NB: not shorter: make test runs these beside other packages' tests
	// (the Jepsen-style one starts processes), and a leader starved of CPU
	// for a lease (it was 50 ms) steps down and fails the commands in
	// flight.
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotInterval = 200 * time.Millisecond
	c.SnapshotThreshold = 2048
	c.TrailingLogs = 512
	c.LogOutput = io.Discard
	c.LogLevel = "ERROR"
	return c
}

// start opens n's store from its directory and starts raft on it.
func (c *cluster) start(n *node) {
	c.t.Helper()
	var err error
	if n.store, err = Open(n.dir, WithBackend(engine.BackendFallback), WithSegmentSize(256<<10)); err != nil {
		c.t.Fatalf("%s: open store: %v", n.id, err)
	}
	if n.snaps, err = raft.NewFileSnapshotStore(filepath.Join(n.dir, "snapshots"), 2, io.Discard); err != nil {
		c.t.Fatal(err)
	}
	n.addr, n.trans = raft.NewInmemTransport(n.addr)
	for _, o := range c.nodes {
		if o != n && o.trans != nil {
			n.trans.Connect(o.addr, o.trans)
			o.trans.Connect(n.addr, n.trans)
		}
	}
	n.fsm = &hashFSM{}
	var logs raft.LogStore = n.store
	if c.wrap != nil {
		logs = c.wrap(n.store)
	}
	if n.r, err = raft.NewRaft(clusterConfig(n.id), n.fsm, logs, n.store, n.snaps, n.trans); err != nil {
		c.t.Fatalf("%s: NewRaft: %v", n.id, err)
	}
}

// stop shuts n's raft down and closes its store.
func (c *cluster) stop(n *node) {
	c.t.Helper()
	if err := n.r.Shutdown().Error(); err != nil {
		c.t.Fatalf("%s: shutdown: %v", n.id, err)
	}
	for _, o := range c.nodes {
		if o != n && o.trans != nil {
			o.trans.Disconnect(n.addr)
		}
	}
	n.trans.Close()
	n.trans = nil
	if err := n.store.Close(); err != nil {
		c.t.Fatalf("%s: close store: %v", n.id, err)
	}
}

// leader waits for a leader among the nodes in among (all when nil).
func (c *cluster) leader(among []*node) *node {
	c.t.Helper()
	if among == nil {
		among = c.nodes
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range among {
			if n.r.State() == raft.Leader {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader elected within 10s")
	return nil
}

// apply applies count commands from clients goroutines on leader, and
// on the node leading then when the leader changes under it (a command
// whose outcome is unknown is sent again: the FSM skips a repeat).
func (c *cluster) apply(leader *node, from, count, clients int) {
	c.t.Helper()
	var next atomic.Int64
	next.Store(int64(from))
	end := int64(from + count)
	var cur atomic.Pointer[node]
	cur.Store(leader)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= end {
					return
				}
				cmd := fmt.Appendf(nil, "cmd-%08d", i)
				if err := c.applyOne(&cur, cmd); err != nil {
					errs <- fmt.Errorf("apply %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		c.t.Fatal(err)
	}
}

// applyOne applies cmd on cur's node, or on the one leading when that
// one stepped down, for up to 30s.
func (c *cluster) applyOne(cur *atomic.Pointer[node], cmd []byte) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := cur.Load()
		err := l.r.Apply(cmd, 5*time.Second).Error()
		if err == nil {
			return nil
		}
		lost := errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout)
		if !lost || time.Now().After(deadline) {
			return fmt.Errorf("on %s: %w", l.id, err)
		}
		time.Sleep(20 * time.Millisecond)
		for _, n := range c.nodes {
			if n.trans != nil && n.r.State() == raft.Leader {
				cur.CompareAndSwap(l, n)
				break
			}
		}
	}
}

// converge waits until every node has applied the same commands as the
// leader (or fails after 20s), checks their FSMs are identical, and
// returns the leader (another one when leader stepped down meanwhile).
func (c *cluster) converge(leader *node) *node {
	c.t.Helper()
	for try := 0; ; try++ {
		err := leader.r.Barrier(10 * time.Second).Error()
		if err == nil {
			break
		}
		if try == 5 {
			c.t.Fatalf("barrier: %v", err)
		}
		leader = c.leader(nil) // it stepped down: the new one
	}
	want, wantN := leader.fsm.state()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.nodes {
		for {
			got, gotN := n.fsm.state()
			if gotN == wantN {
				if got != want {
					c.t.Fatalf("%s applied %d commands like the leader but its hash differs", n.id, gotN)
				}
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s applied %d commands, the leader %d", n.id, gotN, wantN)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return leader
}

// newCluster starts three nodes on fresh directories, bootstraps them
// and returns the cluster and its leader; the nodes stop with the test.
func newCluster(t *testing.T, wrap func(*Store) raft.LogStore) (*cluster, *node) {
	c := &cluster{t: t, wrap: wrap}
	for i := range 3 {
		c.nodes = append(c.nodes, &node{id: raft.ServerID(fmt.Sprintf("n%d", i)), addr: raft.ServerAddress(fmt.Sprintf("addr%d", i)), dir: t.TempDir()})
	}
	for _, n := range c.nodes {
		c.start(n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n.trans != nil {
				n.r.Shutdown().Error() // waits for raft's goroutines: they use the store until then
				n.store.Close()
			}
		}
	})
	var servers []raft.Server
	for _, n := range c.nodes {
		servers = append(servers, raft.Server{ID: n.id, Address: n.addr})
	}
	if err := c.nodes[0].r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	return c, c.leader(nil)
}

// cut disconnects n from every other node, both ways.
func (c *cluster) cut(n *node) {
	for _, o := range c.nodes {
		if o != n && o.trans != nil {
			o.trans.Disconnect(n.addr)
		}
	}
	n.trans.DisconnectAll()
}

// heal connects n to every other running node again.
func (c *cluster) heal(n *node) {
	for _, o := range c.nodes {
		if o != n && o.trans != nil {
			o.trans.Connect(n.addr, n.trans)
			n.trans.Connect(o.addr, o.trans)
		}
	}
}

// others returns the nodes other than n.
func (c *cluster) others(n *node) []*node {
	var out []*node
	for _, o := range c.nodes {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}

// logCache is raft.NewLogCache around the store, as Consul and Nomad run
// their log stores.
func logCache(s *Store) raft.LogStore {
	lc, err := raft.NewLogCache(512, s)
	if err != nil {
		panic(err) // only for a capacity <= 0
	}
	return lc
}

// TestCluster runs the cluster on the stores as they are and behind
// raft.NewLogCache (which forwards IsMonotonic and caches recent logs).
func TestCluster(t *testing.T) {
	t.Run("store", func(t *testing.T) { testCluster(t, nil) })
	t.Run("logcache", func(t *testing.T) { testCluster(t, logCache) })
}

func testCluster(t *testing.T, wrap func(*Store) raft.LogStore) {
	c, leader := newCluster(t, wrap)

	// 20k commands from 64 clients; snapshots compact every log.
	c.apply(leader, 0, 20000, 64)
	leader = c.converge(leader)
	for _, n := range c.nodes {
		if err := n.r.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			t.Fatalf("%s: snapshot: %v", n.id, err)
		}
	}
	for _, n := range c.nodes {
		first, _ := n.store.FirstIndex()
		last, _ := n.store.LastIndex()
		if first <= 1 || last-first > 4*512 {
			t.Fatalf("%s: log %d..%d after snapshots: not compacted", n.id, first, last)
		}
	}

	// Cut the leader off; it appends entries nobody else will have.
	old := leader
	others := c.others(old)
	c.cut(old)
	futures := make([]raft.ApplyFuture, 20)
	for i := range futures {
		futures[i] = old.r.Apply(fmt.Appendf(nil, "lost-%d", i), time.Second)
	}
	for _, f := range futures {
		if err := f.Error(); err == nil {
			t.Fatal("an entry applied on a leader cut off from the cluster")
		}
	}
	oldLast, _ := old.store.LastIndex()
	var oldTail raft.Log
	if err := old.store.GetLog(oldLast, &oldTail); err != nil {
		t.Fatal(err)
	}
	if string(oldTail.Data) != "lost-19" {
		t.Fatalf("the cut-off leader's last entry is %q, not its own uncommitted one", oldTail.Data)
	}
	leader = c.leader(others)
	c.apply(leader, 20000, 500, 16)
	// Rejoin: the old leader's entries past the new leader's log at its
	// indexes conflict and must be deleted.
	c.heal(old)
	c.apply(leader, 20500, 500, 16)
	leader = c.converge(leader)
	var now raft.Log
	if err := old.store.GetLog(oldTail.Index, &now); err != nil {
		t.Fatalf("the old leader's index %d after it rejoined: %v", oldTail.Index, err)
	}
	if now.Term == oldTail.Term && string(now.Data) == string(oldTail.Data) {
		t.Fatalf("the old leader still holds its uncommitted entry %d (term %d, %q)", oldTail.Index, oldTail.Term, oldTail.Data)
	}

	// Restart a follower, then the leader, from their directories.
	var follower *node
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	c.stop(follower)
	c.apply(leader, 21000, 500, 16)
	c.start(follower)
	c.apply(leader, 21500, 500, 16)
	leader = c.converge(leader)

	c.stop(leader)
	next := c.leader(c.others(leader))
	c.apply(next, 22000, 500, 16)
	c.start(leader)
	c.apply(next, 22500, 500, 16)
	next = c.converge(next)
	_, n := next.fsm.state()
	if n != 23000 {
		t.Fatalf("the FSMs applied %d commands, want 23000 (none of the cut-off leader's)", n)
	}
}
