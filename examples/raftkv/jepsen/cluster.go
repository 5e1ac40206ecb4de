package jepsen

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cluster is the raftkv processes under test and the Links between them:
// node i dials node j's raft transport through Links[[2]int{i, j}] (its
// --peers names the link's address for j), while clients reach every
// node's HTTP API directly.
type Cluster struct {
	Bin   string // the raftkv binary
	Dir   string // node i's directory is Dir/n<i>, its output Dir/n<i>.log
	Nodes []*Node
	Links map[[2]int]*Link

	mu sync.Mutex // guards the Nodes' processes
}

// Node is one raftkv process (restarted in place after a kill).
type Node struct {
	ID       string
	RaftAddr string // where it listens for raft
	HTTPAddr string
	args     []string
	cmd      *exec.Cmd
	exited   chan struct{}
	pid      int
}

// nodeFlags are the raft settings of the nodes: short timeouts for quick
// failovers, and snapshots, compactions and segment rotations often, so
// that kills and partitions land in the middle of them.
var nodeFlags = []string{
	"--heartbeat", "300ms", "--rpc-timeout", "1s",
	"--snapshot-threshold", "256", "--snapshot-interval", "300ms", "--trailing-logs", "128",
	"--segment-size", strconv.Itoa(256 << 10),
}

// NewCluster prepares n nodes and their links (ports picked with rng) in
// dir; Start starts them.
func NewCluster(bin, dir string, n int, rng *rand.Rand) (*Cluster, error) {
	c := &Cluster{Bin: bin, Dir: dir, Links: map[[2]int]*Link{}}
	for i := range n {
		raftAddr, err := freePort(rng)
		if err != nil {
			return nil, err
		}
		httpAddr, err := freePort(rng)
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, &Node{ID: fmt.Sprintf("n%d", i), RaftAddr: raftAddr, HTTPAddr: httpAddr})
	}
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			l, err := NewLink(i, j, c.Nodes[j].RaftAddr)
			if err != nil {
				c.Close()
				return nil, err
			}
			c.Links[[2]int{i, j}] = l
		}
	}
	for i, nd := range c.Nodes {
		var peers []string
		for j, o := range c.Nodes {
			addr := o.RaftAddr
			if j != i {
				addr = c.Links[[2]int{i, j}].Addr()
			}
			peers = append(peers, fmt.Sprintf("%s=%s=%s", o.ID, addr, o.HTTPAddr))
		}
		nd.args = append([]string{"--id", nd.ID, "--dir", filepath.Join(dir, nd.ID),
			"--raft-addr", nd.RaftAddr, "--http-addr", nd.HTTPAddr, "--peers", strings.Join(peers, ",")}, nodeFlags...)
	}
	return c, nil
}

// ExtraArgs adds flags to every node's command line (from its next start).
func (c *Cluster) ExtraArgs(args ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.Nodes {
		nd.args = append(nd.args, args...)
	}
}

// freePort returns a loopback address free now, below the kernel's
// ephemeral range (where the links' and clients' ports come from), so
// that a node restarted later finds its port free again.
func freePort(rng *rand.Rand) (string, error) {
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rng.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return addr, nil
		}
	}
	return "", errors.New("jepsen: no free port found")
}

// Start starts node i's process (it must not be running).
func (c *Cluster) Start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.Nodes[i]
	if nd.cmd != nil {
		return fmt.Errorf("jepsen: %s is running", nd.ID)
	}
	out, err := os.OpenFile(filepath.Join(c.Dir, nd.ID+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.Bin, nd.args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("jepsen: start %s: %w", nd.ID, err)
	}
	fmt.Fprintf(out, "=== jepsen: started %s, pid %d\n", nd.ID, cmd.Process.Pid)
	nd.cmd, nd.pid, nd.exited = cmd, cmd.Process.Pid, make(chan struct{})
	go func(exited chan struct{}) {
		cmd.Wait()
		out.Close()
		close(exited)
	}(nd.exited)
	return nil
}

// Kill SIGKILLs node i (on Unix; TerminateProcess elsewhere) and waits
// for it to be gone. Killing a node that is down does nothing.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.Nodes[i]
	if nd.cmd == nil {
		return nil
	}
	err := nd.cmd.Process.Kill()
	<-nd.exited
	nd.cmd = nil
	if errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("jepsen: %s had exited by itself (see %s.log)", nd.ID, nd.ID)
	}
	return err
}

// Running reports whether node i's process runs (it may have exited by
// itself: Exited says so).
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Nodes[i].cmd != nil
}

// Exited returns the nodes whose processes ended without being killed.
func (c *Cluster) Exited() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, nd := range c.Nodes {
		if nd.cmd == nil {
			continue
		}
		select {
		case <-nd.exited:
			out = append(out, fmt.Sprintf("%s (pid %d: %v)", nd.ID, nd.pid, nd.cmd.ProcessState))
		default:
		}
	}
	return out
}

// SetLinks puts every link between a and b (both ways) into mode m.
func (c *Cluster) SetLinks(a, b int, m Mode) {
	c.Links[[2]int{a, b}].Set(m)
	c.Links[[2]int{b, a}].Set(m)
}

// Heal puts every link up.
func (c *Cluster) Heal() {
	for _, l := range c.Links {
		l.Set(Up)
	}
}

// Close kills every node and closes the links.
func (c *Cluster) Close() {
	for i := range c.Nodes {
		c.Kill(i)
	}
	for _, l := range c.Links {
		l.Close()
	}
}

// Status is what a node's GET /status says.
type Status struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

var statusClient = &http.Client{Timeout: 500 * time.Millisecond}

// Status asks node i for its status.
func (c *Cluster) Status(i int) (Status, error) {
	var st Status
	resp, err := statusClient.Get("http://" + c.Nodes[i].HTTPAddr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("jepsen: %s: /status answered %s", c.Nodes[i].ID, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Leader returns the node that says it leads in the highest term, or -1.
func (c *Cluster) Leader() int {
	best, term := -1, uint64(0)
	for i := range c.Nodes {
		if !c.Running(i) {
			continue
		}
		if st, err := c.Status(i); err == nil && st.State == "Leader" && st.Term >= term {
			best, term = i, st.Term
		}
	}
	return best
}

// WaitConverged waits until a leader is elected and every running node
// has applied what it has, or timeout passes.
func (c *Cluster) WaitConverged(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for ; time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		l := c.Leader()
		if l < 0 {
			continue
		}
		ls, err := c.Status(l)
		if err != nil {
			continue
		}
		all := true
		for i := range c.Nodes {
			if st, err := c.Status(i); err != nil || st.AppliedIndex < ls.AppliedIndex || st.Leader != ls.ID {
				all = false
			}
		}
		if all {
			return nil
		}
	}
	return fmt.Errorf("jepsen: the cluster did not converge within %v", timeout)
}
