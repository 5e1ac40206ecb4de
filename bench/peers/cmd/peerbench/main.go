// Command peerbench is dwal's benchmark harness with the peers as its
// systems. The bench program (dwalbench) builds and runs it with --child;
// it is not meant to be run by hand.
package main

import (
	"os"

	"github.com/dwal-project/dwal/bench"
	"github.com/dwal-project/dwal/bench/peers"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "scale-probe" {
		os.Exit(peers.ScaleProbe(os.Args[2:]))
	}
	bench.RaftBench = peers.RaftBench
	bench.ScaleBench = peers.ScaleBench
	os.Exit(bench.Child(os.Args[1:], os.Stdout, os.Stderr, peers.Systems(), peers.Versions()))
}
