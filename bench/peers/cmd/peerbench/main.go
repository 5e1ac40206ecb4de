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
	bench.RaftBench = peers.RaftBench
	os.Exit(bench.Child(os.Args[1:], os.Stdout, os.Stderr, peers.Systems(), peers.Versions()))
}
