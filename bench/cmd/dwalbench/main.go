// Command dwalbench is the benchmark program on its own (the same as
// `dwal bench`): go run ./bench/cmd/dwalbench --help.
package main

import (
	"os"

	"github.com/dwal-project/dwal/bench"
)

func main() { os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr)) }
