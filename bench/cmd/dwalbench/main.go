// Command dwalbench is dwal's benchmark program (package bench): dwal
// beside its peers, a seed-style baseline, the floors and fio's device
// limit. make bench builds and runs it as bin/dwalbench; go run
// ./bench/cmd/dwalbench --help lists its flags. It is a command of its own,
// apart from the dwal tool, so that the tool links none of the benchmark's
// plotting and histogram libraries.
package main

import (
	"os"

	"github.com/dwal-project/dwal/bench"
)

func main() { os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr)) }
