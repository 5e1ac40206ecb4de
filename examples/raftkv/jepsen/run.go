package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Options describe one run.
type Options struct {
	Bin      string        // the raftkv binary
	Dir      string        // the nodes' directories and logs
	Seed     uint64        // the nemesis's, the clients' and the ports' randomness
	Duration time.Duration // of the faults and the workload
	Nodes    int           // default 3
	Clients  int           // default 6
	Keys     int           // registers, default 3
	// CheckTimeout bounds the linearizability check (0: no bound).
	CheckTimeout time.Duration
	Logf         func(format string, args ...any) // progress (may be nil)
}

// Report is what a run found.
type Report struct {
	Seed     uint64
	Duration time.Duration

	Ops                      int // every operation the clients ran
	OKPuts, OKGets           int
	FailedPuts, FailedGets   int
	UnknownPuts              int // kept for the checker: their value was read
	UnknownPutsNeverRead     int // left out (Prepare says why)
	Kills, Partitions        int
	Result                   porcupine.CheckResult
	CheckTime                time.Duration
	Visualization            string // the checker's HTML rendering, when not Ok
	Acked, Lost              int    // write-once PUTs acknowledged, and those not read back after the restart of every node
	MaybeFound, MaybeMissing int    // ... of unknown outcome, read back or not
	FailedFound              int    // ... that failed, yet read back (a violation)
	Events                   []string
}

func (r Report) String() string {
	return fmt.Sprintf("seed %d, %v: %d ops (put ok %d, failed %d, unknown %d of which %d read; get ok %d, failed %d), %d kills, %d partitions; "+
		"linearizability: %s (checked in %v); write-once PUTs after restarting every node: %d acknowledged, %d lost, %d failed yet present; %d unknown found, %d not",
		r.Seed, r.Duration, r.Ops, r.OKPuts, r.FailedPuts, r.UnknownPuts+r.UnknownPutsNeverRead, r.UnknownPuts, r.OKGets, r.FailedGets,
		r.Kills, r.Partitions, r.Result, r.CheckTime.Round(time.Millisecond), r.Acked, r.Lost, r.FailedFound, r.MaybeFound, r.MaybeMissing)
}

// OK reports whether the run found nothing wrong.
func (r Report) OK() bool { return r.Result == porcupine.Ok && r.Lost == 0 && r.FailedFound == 0 }

func (o *Options) defaults() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Clients == 0 {
		o.Clients = 6
	}
	if o.Keys == 0 {
		o.Keys = 3
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Run starts a cluster, runs the clients and the nemesis for o.Duration,
// heals and restarts everything, SIGKILLs every node at once and starts
// them again, reads every key back, and checks the history. An error is
// a run that could not be carried out (or a node that died by itself);
// what the checks found is in the Report.
func Run(o Options) (Report, error) {
	o.defaults()
	rep := Report{Seed: o.Seed, Duration: o.Duration}
	c, err := NewCluster(o.Bin, o.Dir, o.Nodes, rand.New(rand.NewPCG(o.Seed, 0x706f7274)))
	if err != nil {
		return rep, err
	}
	defer c.Close()
	for i := range c.Nodes {
		if err := c.Start(i); err != nil {
			return rep, err
		}
	}
	if err := c.WaitConverged(30 * time.Second); err != nil {
		return rep, err
	}
	h := NewHistory()
	keys := make([]string, o.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("r%d", i)
	}
	clients := make([]*Client, o.Clients)
	for i := range clients {
		clients[i] = NewClient(i, c, h, keys, o.Seed)
	}
	nem := NewNemesis(c, o.Seed, o.Logf)
	if err := runFaults(o, c, clients, nem); err != nil {
		return rep, err
	}
	rep.Kills, rep.Partitions, rep.Events = nem.Kills, nem.Partitions, nem.Events
	o.Logf("faults over: %d kills, %d partitions, %d operations", nem.Kills, nem.Partitions, len(h.Ops()))

	if err := restartAll(c, nem); err != nil {
		return rep, err
	}
	readBack(c, h, clients, keys, &rep)
	check(o, h.Ops(), &rep)
	return rep, nil
}

// runFaults runs the clients and the nemesis for o.Duration, then waits
// for the nemesis to heal and restart what it broke, and for the
// clients to finish their operations.
func runFaults(o Options, c *Cluster, clients []*Client, nem *Nemesis) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); cl.Run(ctx) }()
	}
	err := nem.Run(ctx)
	wg.Wait()
	if dead := c.Exited(); len(dead) > 0 {
		return fmt.Errorf("jepsen: nodes exited by themselves: %v (see their logs in %s)", dead, c.Dir)
	}
	return err
}

// restartAll waits for the cluster to settle, SIGKILLs every node at
// once, starts them all again and waits for them to settle.
func restartAll(c *Cluster, nem *Nemesis) error {
	if err := c.WaitConverged(30 * time.Second); err != nil {
		return fmt.Errorf("after the faults: %w", err)
	}
	for i := range c.Nodes {
		if err := c.Kill(i); err != nil {
			return err
		}
	}
	nem.event("kill -9 every node")
	for i := range c.Nodes {
		if err := c.Start(i); err != nil {
			return err
		}
	}
	nem.event("restart every node")
	if err := c.WaitConverged(30 * time.Second); err != nil {
		return fmt.Errorf("after restarting every node: %w", err)
	}
	return nil
}

// readBack reads every register and every write-once key, retrying a
// read that fails (a failed read is recorded and has no effect), and
// counts the write-once PUTs found and missing.
func readBack(c *Cluster, h *History, clients []*Client, keys []string, rep *Report) {
	final := NewClient(len(clients), c, h, nil, rep.Seed)
	get := func(key string) Op {
		var op Op
		for range 50 {
			if op = final.Get(key); op.Outcome == OK {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return op
	}
	for _, k := range keys {
		get(k)
	}
	wrote := map[string]string{}
	for _, op := range h.Ops() {
		if op.Put {
			wrote[op.Key] = op.Value
		}
	}
	for _, cl := range clients {
		for _, k := range cl.Acked {
			rep.Acked++
			if op := get(k); op.Outcome != OK || !op.Found || op.Value != wrote[k] {
				rep.Lost++
				rep.Events = append(rep.Events, fmt.Sprintf("LOST: acknowledged put(%s, %s) read back as %v", k, wrote[k], op))
			}
		}
		for _, k := range cl.Maybe {
			if op := get(k); op.Found {
				rep.MaybeFound++
			} else {
				rep.MaybeMissing++
			}
		}
		for _, k := range cl.Nope {
			if op := get(k); op.Found {
				rep.FailedFound++
				rep.Events = append(rep.Events, fmt.Sprintf("FAILED PUT PRESENT: put(%s, %s) read back as %v", k, wrote[k], op))
			}
		}
	}
}

// check counts the history and runs the linearizability checker on it.
func check(o Options, ops []Op, rep *Report) {
	rep.Ops = len(ops)
	for _, op := range ops {
		if op.Outcome == OK && op.Put {
			rep.OKPuts++
		} else if op.Outcome == OK {
			rep.OKGets++
		}
	}
	p := Prepare(ops)
	rep.FailedPuts, rep.FailedGets, rep.UnknownPuts, rep.UnknownPutsNeverRead = p.FailedPuts, p.FailedGets, p.UnknownPuts, p.UnknownPutsNeverRead
	t0 := time.Now()
	res, info := porcupine.CheckOperationsVerbose(Model, p.Ops, o.CheckTimeout)
	rep.Result, rep.CheckTime = res, time.Since(t0)
	if res != porcupine.Ok {
		path := filepath.Join(o.Dir, "linearizability.html")
		if err := porcupine.VisualizePath(Model, info, path); err != nil {
			o.Logf("visualization: %v", errors.Unwrap(err))
		} else {
			rep.Visualization = path
		}
	}
}
