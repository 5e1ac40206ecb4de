package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func TestParsePeers(t *testing.T) {
	ps, err := parsePeers("a=127.0.0.1:1=127.0.0.1:2, b=h:3=h:4")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[1] != (peer{ID: "b", Raft: "h:3", HTTP: "h:4"}) {
		t.Fatalf("parsed %+v", ps)
	}
	if a, err := ps.ServerAddr("a"); err != nil || a != "127.0.0.1:1" {
		t.Fatalf("ServerAddr(a) = %q, %v", a, err)
	}
	if _, err := ps.ServerAddr("c"); err == nil {
		t.Fatal("ServerAddr of an unknown ID gave no error")
	}
	c := ps.configuration()
	if len(c.Servers) != 2 || c.Servers[0].ID != "a" || c.Servers[0].Address != "127.0.0.1:1" || c.Servers[1].Suffrage != raft.Voter {
		t.Fatalf("configuration %+v", c)
	}
	for _, bad := range []string{"", "a=h:1", "a=h:1=h:2=x", "=h:1=h:2", "a=h=h:2", "a=h:1=h:2,a=h:3=h:4"} {
		if _, err := parsePeers(bad); !errors.Is(err, errPeers) {
			t.Errorf("parsePeers(%q) = %v, want errPeers", bad, err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	base := []string{"--id", "a", "--dir", "d", "--raft-addr", "h:1", "--http-addr", "h:2", "--peers", "a=h:1=h:2"}
	cfg, err := parseFlags(base, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.id != "a" || cfg.dir != "d" || len(cfg.peers) != 1 || cfg.heartbeat != 500*time.Millisecond {
		t.Fatalf("config %+v", cfg)
	}
	for _, tc := range [][]string{
		base[2:], // no --id
		append(base[:8:8], "--peers", "b=h:1=h:2"),
		append(append([]string{}, base...), "extra"),
		append(append([]string{}, base...), "--heartbeat", "0s"),
	} {
		if _, err := parseFlags(tc, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("parseFlags(%q) = %v, want errUsage", tc, err)
		}
	}
}

func TestFSMSnapshotRoundTrip(t *testing.T) {
	f := newFSM()
	for i := range 1000 {
		if r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: encodePut(fmt.Sprint("k", i%300), fmt.Appendf(nil, "v%d", i))}); r != nil {
			t.Fatalf("Apply: %v", r)
		}
	}
	if r := f.Apply(&raft.Log{Index: 1001, Type: raft.LogCommand, Data: []byte{9, 9}}); r == nil {
		t.Fatal("a malformed command applied without an error")
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	g.m["stale"] = []byte("x")
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if g.len() != 300 {
		t.Fatalf("restored %d keys, want 300", g.len())
	}
	for i := 700; i < 1000; i++ {
		if v, ok := g.get(fmt.Sprint("k", i%300)); !ok || string(v) != fmt.Sprint("v", i) {
			t.Fatalf("k%d = %q, %v after restore", i%300, v, ok)
		}
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader(append(sink.Bytes(), 0)))); err == nil {
		t.Fatal("a snapshot with trailing bytes restored")
	}
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// freeAddr returns a loopback address nothing listens on (now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tnode is a node with its HTTP API served on cfg.httpAddr.
type tnode struct {
	*node
	srv *http.Server
}

func (n *tnode) stop() error { return errors.Join(n.srv.Close(), n.close()) }

// testNode starts a node of cfg; it stops with the test.
func testNode(t *testing.T, cfg config) *tnode {
	t.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: io.Discard})
	n, err := startNode(cfg, logger, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		n.close()
		t.Fatal(err)
	}
	tn := &tnode{node: n, srv: &http.Server{Handler: n.handler()}}
	go tn.srv.Serve(ln)
	return tn
}

func testConfigs(t *testing.T, count int) []config {
	var ps peers
	for i := range count {
		ps = append(ps, peer{ID: raft.ServerID(fmt.Sprint("n", i)), Raft: raft.ServerAddress(freeAddr(t)), HTTP: freeAddr(t)})
	}
	var cfgs []config
	for _, p := range ps {
		cfgs = append(cfgs, config{id: p.ID, dir: t.TempDir(), raftAddr: string(p.Raft), httpAddr: p.HTTP, peers: ps,
			heartbeat: time.Second, rpcTimeout: time.Second, snapThreshold: 64, snapInterval: 100 * time.Millisecond,
			trailingLogs: 16, segmentSize: 64 << 10})
	}
	return cfgs
}

var noRedirect = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, url, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func waitLeader(t *testing.T, nodes []*tnode) *tnode {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, n := range nodes {
			if n != nil && n.r.State() == raft.Leader {
				return n
			}
		}
	}
	t.Fatal("no leader within 10s")
	return nil
}

// put writes key=val through the leader, again when the leader changed
// under it (a 503, or a 504 whose write may be committed: writing the same
// value again after it is harmless, the writes of this test are serial).
func put(t *testing.T, nodes []*tnode, key, val string) {
	t.Helper()
	for try := 0; ; try++ {
		code, body, _ := do(t, "PUT", "http://"+waitLeader(t, nodes).cfg.httpAddr+"/kv/"+key, val)
		if code == http.StatusNoContent {
			return
		}
		if try == 5 || code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout && code != http.StatusTemporaryRedirect {
			t.Fatalf("PUT %s: %d %s", key, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCluster: three nodes in this process over TCP; the HTTP API on the
// leader and on a follower; snapshots compact the logs; a follower
// restarted from its directory serves everything once it leads.
func TestCluster(t *testing.T) {
	cfgs := testConfigs(t, 3)
	nodes := make([]*tnode, 3)
	for i, c := range cfgs {
		nodes[i] = testNode(t, c)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n != nil {
				n.stop()
			}
		}
	})
	l := waitLeader(t, nodes)
	var f *tnode
	for _, n := range nodes {
		if n != l {
			f = n
			break
		}
	}
	// A follower redirects once it has heard from the leader.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, id := f.r.LeaderWithID(); id == l.cfg.id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not know the leader %s within 10s", f.cfg.id, l.cfg.id)
		}
	}
	lurl, furl := "http://"+l.cfg.httpAddr, "http://"+f.cfg.httpAddr
	if code, _, h := do(t, "PUT", furl+"/kv/x", "1"); code != http.StatusTemporaryRedirect || h.Get("Location") != lurl+"/kv/x" {
		t.Fatalf("PUT on a follower: %d, Location %q; want 307 to %s", code, h.Get("Location"), lurl)
	}
	if code, _, h := do(t, "GET", furl+"/kv/x", ""); code != http.StatusTemporaryRedirect || h.Get("Location") != lurl+"/kv/x" {
		t.Fatalf("GET on a follower: %d, Location %q", code, h.Get("Location"))
	}
	if code, _, _ := do(t, "GET", lurl+"/kv/x", ""); code != http.StatusNotFound {
		t.Fatalf("GET of a key never written: %d, want 404", code)
	}
	for i := range 200 {
		put(t, nodes, fmt.Sprint("k", i%50), fmt.Sprint("v", i))
	}
	l = waitLeader(t, nodes)
	lurl = "http://" + l.cfg.httpAddr
	if code, body, _ := do(t, "GET", lurl+"/kv/k7", ""); code != http.StatusOK || body != "v157" {
		t.Fatalf("GET k7: %d %q, want 200 v157", code, body)
	}
	code, body, _ := do(t, "GET", lurl+"/status", "")
	var st status
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("GET /status: %d %v %s", code, err, body)
	}
	if st.ID != string(l.cfg.id) || st.State != "Leader" || st.Leader != st.ID || st.AppliedIndex < 200 || st.LastIndex < st.AppliedIndex || st.Keys != 50 {
		t.Fatalf("status %+v", st)
	}
	if st.FirstLog <= 1 {
		t.Fatalf("the leader's log starts at %d after 200 writes and a snapshot threshold of 64: not compacted", st.FirstLog)
	}

	// Restart the follower from its directory, then make it lead.
	fi := slices.Index(nodes, f)
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	nodes[fi] = nil
	nodes[fi] = testNode(t, cfgs[fi])
	f = nodes[fi]
	for deadline := time.Now().Add(10 * time.Second); f.r.AppliedIndex() < st.AppliedIndex; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted follower applied %d, the leader %d", f.r.AppliedIndex(), st.AppliedIndex)
		}
	}
	if err := l.r.LeadershipTransferToServer(f.cfg.id, raft.ServerAddress(f.cfg.raftAddr)).Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	if waitLeader(t, nodes) != f {
		t.Fatal("the restarted follower did not take the lead")
	}
	for i := 150; i < 200; i++ {
		if code, body, _ := do(t, "GET", "http://"+f.cfg.httpAddr+fmt.Sprint("/kv/k", i%50), ""); code != http.StatusOK || body != fmt.Sprint("v", i) {
			t.Fatalf("GET k%d on the new leader: %d %q", i%50, code, body)
		}
	}
}
