package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Nemesis injects the faults of a run, one after the other, from its
// seed: SIGKILLs of one node (the leader half the time) or of two (no
// quorum until they are back), each restarted from its directory after a
// pause; and partitions, with every cut link dropping or blackholing its
// traffic: one node isolated (the leader half the time), a bridge (two
// nodes cut from each other, both still reaching the third), or one node
// cut one way (its RPCs to the others are lost, theirs to it arrive).
type Nemesis struct {
	c    *Cluster
	rng  *rand.Rand
	logf func(format string, args ...any)

	Kills, Partitions int
	Events            []string // what it did, with the time since the start
	start             time.Time
}

// NewNemesis returns the nemesis of seed.
func NewNemesis(c *Cluster, seed uint64, logf func(string, ...any)) *Nemesis {
	return &Nemesis{c: c, rng: rand.New(rand.NewPCG(seed, 0x6e656d65)), logf: logf, start: time.Now()}
}

func (n *Nemesis) event(format string, args ...any) {
	e := fmt.Sprintf("%6.2fs ", time.Since(n.start).Seconds()) + fmt.Sprintf(format, args...)
	n.Events = append(n.Events, e)
	if n.logf != nil {
		n.logf("nemesis: %s", e)
	}
}

// sleep waits a random time in [lo, hi), or until ctx ends.
func (n *Nemesis) sleep(ctx context.Context, lo, hi time.Duration) {
	d := lo + time.Duration(n.rng.Int64N(int64(hi-lo)))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// victim is the leader with probability 1/2 (when there is one), else a
// random node.
func (n *Nemesis) victim() (int, string) {
	if n.rng.IntN(2) == 0 {
		if l := n.c.Leader(); l >= 0 {
			return l, "the leader "
		}
	}
	return n.rng.IntN(len(n.c.Nodes)), ""
}

// Run injects faults until ctx ends, then heals every link and restarts
// every node it killed. It returns the first error of the cluster (a node
// that could not be restarted).
func (n *Nemesis) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		n.sleep(ctx, 200*time.Millisecond, time.Second) // the cluster works undisturbed
		if ctx.Err() != nil {
			break
		}
		var err error
		switch r := n.rng.IntN(10); {
		case r < 4:
			err = n.kill(ctx, 1)
		case r < 5:
			err = n.kill(ctx, 2)
		default:
			n.partition(ctx)
		}
		if err != nil {
			return err
		}
	}
	n.c.Heal()
	return nil
}

// kill SIGKILLs count nodes, waits, and restarts them.
func (n *Nemesis) kill(ctx context.Context, count int) error {
	first, what := n.victim()
	nodes := []int{first}
	if count == 2 {
		nodes = append(nodes, (first+1+n.rng.IntN(len(n.c.Nodes)-1))%len(n.c.Nodes))
	}
	for _, i := range nodes {
		if err := n.c.Kill(i); err != nil {
			return err
		}
		n.Kills++
		n.event("kill -9 %s%s", what, n.c.Nodes[i].ID)
		what = ""
	}
	n.sleep(ctx, 300*time.Millisecond, 2*time.Second)
	for _, i := range nodes {
		if err := n.c.Start(i); err != nil {
			return err
		}
		n.event("restart %s", n.c.Nodes[i].ID)
	}
	return nil
}

// partition cuts links in one of three shapes, holds, and heals.
func (n *Nemesis) partition(ctx context.Context) {
	mode := Drop
	if n.rng.IntN(2) == 0 {
		mode = Blackhole
	}
	nodes := len(n.c.Nodes)
	a, what := n.victim()
	switch n.rng.IntN(3) {
	case 0: // a alone on one side
		for b := range nodes {
			if b != a {
				n.c.SetLinks(a, b, mode)
			}
		}
		n.event("partition (%s): %s%s isolated", mode, what, n.c.Nodes[a].ID)
	case 1: // a bridge: a and b cut from each other, both reach the rest
		b := (a + 1 + n.rng.IntN(nodes-1)) % nodes
		n.c.SetLinks(a, b, mode)
		n.event("partition (%s): bridge, %s%s and %s cut from each other", mode, what, n.c.Nodes[a].ID, n.c.Nodes[b].ID)
	default: // one way: what a sends is lost, what it is sent arrives
		for b := range nodes {
			if b != a {
				n.c.Links[[2]int{a, b}].Set(mode)
			}
		}
		n.event("partition (%s): one way, %s%s's RPCs to the others lost", mode, what, n.c.Nodes[a].ID)
	}
	n.Partitions++
	n.sleep(ctx, 500*time.Millisecond, 3*time.Second)
	n.c.Heal()
	n.event("heal")
}
