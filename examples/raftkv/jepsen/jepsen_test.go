package jepsen

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var (
	seed     = flag.Uint64("jepsen.seed", 1, "TestJepsen: the seed of the first run")
	runs     = flag.Int("jepsen.runs", 1, "TestJepsen: runs, with seeds seed, seed+1, ...")
	duration = flag.Duration("jepsen.duration", 15*time.Second, "TestJepsen: faults and workload of each run")
	clients  = flag.Int("jepsen.clients", 6, "TestJepsen: concurrent clients")
	keep     = flag.String("jepsen.dir", "", "TestJepsen: keep the runs' directories (nodes' data and logs) under this directory")
	race     = flag.Bool("jepsen.race", false, "TestJepsen: build raftkv with the race detector")
)

// buildRaftkv builds examples/raftkv into dir, or skips the test when no
// Go toolchain is at hand.
func buildRaftkv(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build examples/raftkv with")
	}
	bin := filepath.Join(dir, "raftkv")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	args := []string{"build", "-o", bin}
	if *race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, "github.com/dwal-project/dwal/examples/raftkv")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/raftkv: %v\n%s", err, out)
	}
	return bin
}

// TestJepsen runs examples/raftkv as real processes over TCP under a
// nemesis (kills and partitions) and checks the history linearizable,
// and that every acknowledged write-once PUT is read back after every
// node was killed and restarted. make test runs one short run;
//
//	make jepsen SEED=7 DURATION=5m RUNS=1
//	go test ./examples/raftkv/jepsen -run TestJepsen -v -jepsen.seed 1 -jepsen.runs 20
//
// runs more. A failing run keeps its directory (the nodes' logs, and the
// checker's linearizability.html) and prints its seed.
func TestJepsen(t *testing.T) {
	root := *keep
	if root == "" {
		root = t.TempDir()
	} else if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildRaftkv(t, root)
	var bad []string
	for s := *seed; s < *seed+uint64(*runs); s++ {
		dir, err := os.MkdirTemp(root, "run-*")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Run(Options{Bin: bin, Dir: dir, Seed: s, Duration: *duration, Clients: *clients,
			CheckTimeout: max(2*time.Minute, *duration), Logf: t.Logf})
		if err != nil {
			t.Errorf("seed %d: %v (directory %s)", s, err, dir)
			bad = append(bad, dir)
			continue
		}
		t.Logf("jepsen: %v", rep)
		if rep.OKPuts == 0 || rep.OKGets == 0 || rep.Kills+rep.Partitions == 0 {
			t.Errorf("seed %d: nothing was tested: %v", s, rep)
		}
		if !rep.OK() {
			t.Errorf("seed %d: %v\nevents:\n  %s\ndirectory %s, visualization %s", s, rep, strings.Join(rep.Events, "\n  "), dir, rep.Visualization)
			bad = append(bad, dir)
			continue
		}
		if rep.Result == porcupine.Ok && *keep == "" {
			os.RemoveAll(dir)
		}
	}
	if len(bad) > 0 && *keep == "" {
		// t.TempDir would remove them: move them where they can be read.
		for _, d := range bad {
			kept := filepath.Join(os.TempDir(), "jepsen-"+filepath.Base(d))
			if err := os.Rename(d, kept); err == nil {
				t.Logf("kept %s", kept)
			}
		}
	}
}

// TestJepsenFindsStaleReads: a follower cut off from the others while
// the leader acknowledges writes, then asked to read. With the nodes
// serving reads from their own state unconfirmed (raftkv --stale-reads)
// the checker must find the history not linearizable: the check can
// fail. The same steps on raftkv as it is must pass (the cut-off follower
// redirects, and a leader that cannot confirm itself does not answer).
func TestJepsenFindsStaleReads(t *testing.T) {
	root := t.TempDir()
	bin := buildRaftkv(t, root)
	for _, stale := range []bool{true, false} {
		h := staleReadScenario(t, bin, filepath.Join(root, fmt.Sprint("stale-", stale)), stale)
		p := Prepare(h.Ops())
		ok := porcupine.CheckOperations(Model, p.Ops)
		t.Logf("stale reads %v: %d operations, linearizable: %v", stale, len(p.Ops), ok)
		if ok == stale {
			t.Fatalf("with --stale-reads %v the history is linearizable: %v\n%v", stale, ok, h.Ops())
		}
	}
}

// staleReadScenario writes a key, cuts a follower off, writes the key
// again through the leader, and reads it from the follower.
func staleReadScenario(t *testing.T, bin, dir string, stale bool) *History {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(bin, dir, 3, rand.New(rand.NewPCG(*seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if stale {
		c.ExtraArgs("--stale-reads")
	}
	for i := range c.Nodes {
		if err := c.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitConverged(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	h := NewHistory()
	w, r := NewClient(0, c, h, nil, *seed), NewClient(1, c, h, nil, *seed)
	putOK := func() {
		for range 100 {
			if w.Put("k").Outcome == OK {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("no PUT acknowledged in 100 tries")
	}
	putOK()
	if err := c.WaitConverged(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	l := c.Leader()
	x := (l + 1) % len(c.Nodes)
	for b := range c.Nodes {
		if b != x {
			c.SetLinks(x, b, Drop)
		}
	}
	putOK() // through the majority, which the follower no longer hears
	for range 5 {
		r.node = c.Nodes[x].HTTPAddr
		r.Get("k")
	}
	c.Heal()
	return h
}
