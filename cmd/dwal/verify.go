package main

import (
	"fmt"
	"io"

	"github.com/dwal-project/dwal/engine/inspect"
)

const verifyUsage = `usage: dwal verify DIR [--strict] [--json]

Reads every segment and batch of the WAL directory DIR and checks every
segment header (magic, CRC, version, ID), every batch (magic, salt, sequence,
length, CRC, entries within the header's LSN range), what lies past the end of
each segment's log, and every .meta against the log. Each problem is printed
with its file, offset and what is wrong. Nothing is locked or modified.

  error    no crash explains it (media corruption, an outside write, a newer
           format): acknowledged data is damaged, or Open or Replay fails
  warning  a crash explains it and the next Open repairs it without losing an
           acknowledged batch (a torn tail of the last, unsealed segment; a
           missing or malformed .meta; an end-of-log record)

Exit status 0 when no error is found (warnings are printed), 1 when one is
(or, with --strict, when anything at all is found), 2 on bad usage.`

func runVerify(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("verify", verifyUsage, stderr)
	strict := fl.Bool("strict", false, "fail (exit 1) on warnings too")
	asJSON := fl.Bool("json", false, "print the problems as JSON")
	dir, code, ok := parseDir(fl, args, stderr)
	if !ok {
		return code
	}
	r, err := inspect.Dir(dir)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	failed := r.Errors() > 0 || (*strict && len(r.Problems) > 0)
	if *asJSON {
		err := printJSON(stdout, struct {
			Dir      string            `json:"dir"`
			OK       bool              `json:"ok"`
			Problems []inspect.Problem `json:"problems"`
		}{r.Dir, !failed, r.Problems})
		if err != nil {
			return fail(stderr, "verify", err)
		}
	} else {
		for _, p := range r.Problems {
			fmt.Fprintln(stdout, p)
		}
		var batches, entries uint64
		for _, s := range r.Segments {
			batches += s.Batches
			entries += s.Entries
		}
		verdict := "clean"
		if len(r.Problems) > 0 {
			verdict = fmt.Sprintf("%d errors, %d warnings", r.Errors(), r.Warnings())
		}
		fmt.Fprintf(stdout, "verify %s: %d segments, %d batches, %d entries: %s\n",
			r.Dir, len(r.Segments), batches, entries, verdict)
	}
	if failed {
		return 1
	}
	return 0
}
