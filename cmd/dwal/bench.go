package main

import (
	"io"

	"github.com/dwal-project/dwal/bench"
)

// runBench is `dwal bench`: the benchmark program of package bench.
func runBench(args []string, stdout, stderr io.Writer) int {
	return bench.Main(args, stdout, stderr)
}
