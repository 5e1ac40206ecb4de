// Command dwal is the user's tool for dwal write-ahead logs.
//
//	dwal demo [flags]                               write, replay and verify a log; print throughput and latency
//	dwal inspect DIR [--json]                       one row per segment: state, sizes, LSN range, header, .meta
//	dwal verify DIR [--strict] [--json]             check every header, batch CRC, salt, sequence and .meta
//	dwal dump DIR [--from LSN] [--to LSN] [--hex|--raw]  entries in write order
//	dwal doctor [DIR] [--duration D]                kernel, io_uring, file system, O_DIRECT, sync latency, advice
//
// The benchmark is a program of its own, dwalbench (bench/cmd/dwalbench,
// make bench), so that this tool links no plotting or histogram library.
//
// Every command takes --help. inspect, verify and dump take no lock and never
// modify the directory, so they may run beside a live writer.
//
// Exit codes: 0 success (verify: no error found), 1 the command failed or
// found a problem (verify: an error, or with --strict a warning), 2 bad usage.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"demo":    {"ingest a few hundred MiB durably, replay and verify it, print throughput and latency", runDemo},
	"inspect": {"list the segments of a WAL directory: state, sizes, LSN range, header, .meta", runInspect},
	"verify":  {"check every header, batch, CRC, salt, sequence and .meta; exit 1 on an error", runVerify},
	"dump":    {"print the entries of a WAL directory in write order", runDump},
	"doctor":  {"explain this machine: kernel, io_uring, file system, O_DIRECT, sync latency, advice", runDoctor},
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "dwal: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dwal COMMAND [flags]   (dwal COMMAND --help for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nthe benchmark is a program of its own: dwalbench (make bench, or go run ./bench/cmd/dwalbench)")
	fmt.Fprintln(w, "\nexit codes: 0 success, 1 failure or problem found, 2 bad usage")
}
