package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// newFlags makes a command's flag set; usage is printed by --help and on
// bad usage, followed by the flags.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fmt.Fprintln(stderr, "\nflags:")
		fl.PrintDefaults()
		fmt.Fprintln(stderr, "\nexit codes: 0 success, 1 failure or problem found, 2 bad usage")
	}
	return fl
}

// parseArgs parses flags that may come before or after the positional
// arguments ("dwal dump DIR --from 5" and "dwal dump --from 5 DIR" both
// work; "--" ends the flags). It returns the positional arguments, or an exit
// code when parsing ends the command: 0 for --help, 2 for bad usage.
func parseArgs(fl *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0, false
			}
			return nil, 2, false
		}
		rest := fl.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		// flag stops at the first positional argument, or after "--".
		if len(args)-len(rest) > 0 && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseDir is parseArgs for the commands that take one directory.
func parseDir(fl *flag.FlagSet, args []string, stderr io.Writer) (string, int, bool) {
	pos, code, ok := parseArgs(fl, args)
	if !ok {
		return "", code, false
	}
	if len(pos) != 1 {
		return "", badUsage(fl, stderr, "want one directory, got %d arguments", len(pos)), false
	}
	return pos[0], 0, true
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// badUsage reports a usage error and returns exit code 2.
func badUsage(fl *flag.FlagSet, stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "dwal %s: %s\n\n", fl.Name(), fmt.Sprintf(format, args...))
	fl.Usage()
	return 2
}

// lsnFlag is an optional LSN flag ("" = not set).
type lsnFlag struct {
	v   uint64
	set bool
}

func (f *lsnFlag) String() string {
	if !f.set {
		return ""
	}
	return strconv.FormatUint(f.v, 10)
}

func (f *lsnFlag) Set(s string) error {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return fmt.Errorf("not an LSN (unsigned 64-bit integer): %q", s)
	}
	f.v, f.set = v, true
	return nil
}

// fail prints err for command cmd, one line per joined error (without the
// engine's own "dwal: " prefix), and returns exit code 1.
func fail(stderr io.Writer, cmd string, err error) int {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "dwal %s: %s\n", cmd, strings.TrimPrefix(line, "dwal: "))
	}
	return 1
}
