package jepsen

import (
	"flag"
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

// TestJepsenFindsStaleReads: the same test with the nodes serving reads
// from their own state unconfirmed (--stale-reads) must find the
// history not linearizable: the check can fail.
func TestJepsenFindsStaleReads(t *testing.T) {
	root := t.TempDir()
	bin := buildRaftkv(t, root)
	rep, err := Run(Options{Bin: bin, Dir: root, Seed: *seed, Duration: 6 * time.Second, Clients: *clients,
		StaleReads: true, CheckTimeout: time.Minute, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("jepsen with stale reads: %v", rep)
	if rep.Result != porcupine.Illegal {
		t.Fatalf("stale reads gave a history found %s, want Illegal", rep.Result)
	}
}
