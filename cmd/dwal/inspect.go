package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dwal-project/dwal/engine/inspect"
)

const inspectUsage = `usage: dwal inspect DIR [--json]

Lists the segments of the WAL directory DIR, one row per segment:
  SEG        segment ID (file NNNNNN.log)
  STATE      sealed (finished by its writer), active (the last segment, not
             sealed: being written, or left by Close or a crash; the next Open
             seals it) or broken (holds an error: see "dwal verify")
  SIZE       file size in bytes (segments are preallocated)
  USED       end of the log: bytes up to the end of the last valid batch
  TORN       bytes past USED that carry this segment's salt (a torn tail)
  BATCHES, ENTRIES, LSN   what the log holds
  META       the .meta file: ok, missing, mismatch, malformed, ignored
  INDEX      the segment's index file (NNNNNN.log.idx): ok (it lists the
             segment's batches exactly), missing or bad (the first read
             that needs it scans the segment and writes it again), - (the
             active segment: written when it is sealed)
  VER, ALIGN, ENC, SALT, CREATED   the segment header (ENC: "no", or
             "key N", the ID of the master key the segment is encrypted under)
then the problems found (as "dwal verify" prints them) and the other files.
Every batch is read and its CRC checked. Nothing is locked or modified.

Exit status 1 when the directory cannot be read or holds an error (see
"dwal verify --help"), else 0.`

func runInspect(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("inspect", inspectUsage, stderr)
	asJSON := fl.Bool("json", false, "print the report as JSON")
	dir, code, ok := parseDir(fl, args, stderr)
	if !ok {
		return code
	}
	r, err := inspect.Dir(dir)
	if err != nil {
		return fail(stderr, "inspect", err)
	}
	if *asJSON {
		if err := printJSON(stdout, r); err != nil {
			return fail(stderr, "inspect", err)
		}
	} else {
		printInspect(stdout, r)
	}
	if r.Errors() > 0 {
		return 1
	}
	return 0
}

func printInspect(w io.Writer, r *inspect.Report) {
	var batches, entries uint64
	for _, s := range r.Segments {
		batches += s.Batches
		entries += s.Entries
	}
	fmt.Fprintf(w, "%s: %d segments, %d batches, %d entries (read with %d-byte alignment)\n\n",
		r.Dir, len(r.Segments), batches, entries, r.Alignment)
	if len(r.Segments) > 0 {
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "SEG\tSTATE\tSIZE\tUSED\tTORN\tBATCHES\tENTRIES\tLSN\tLOGS\tMETA\tINDEX\tVER\tALIGN\tENC\tSALT\tCREATED (UTC)")
		for _, s := range r.Segments {
			lsn := "-"
			if s.Entries > 0 {
				lsn = fmt.Sprintf("%d..%d", s.MinLSN, s.MaxLSN)
			}
			ver, al, enc, salt, created := "-", "-", "-", "-", "-"
			if h := s.Header; h != nil {
				ver, al, salt = fmt.Sprint(h.Version), fmt.Sprint(h.Alignment), fmt.Sprintf("%016x", h.Salt)
				enc = "no"
				if h.Encrypted {
					enc = fmt.Sprintf("key %d", h.KeyID)
				}
				created = h.Created.Format(time.DateTime)
			}
			logs := "-"
			if s.Logs > 0 {
				logs = fmt.Sprint(s.Logs)
			}
			fmt.Fprintf(tw, "%06d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				s.ID, s.State, s.FileSize, s.Used, s.Torn, s.Batches, s.Entries, lsn, logs, s.Meta, s.Index, ver, al, enc, salt, created)
		}
		tw.Flush()
	}
	if st := r.State; st != nil && len(st.Logs) > 0 {
		fmt.Fprintf(w, "\nlog state (checkpoint covering segments below %d; new segments from %d):\n", st.Covers, st.Floor)
		for _, l := range st.Logs {
			fmt.Fprintf(w, "  log %d: first LSN %d", l.ID, l.First)
			if l.Base.Segment > 0 {
				fmt.Fprintf(w, ", nothing before %d/%d", l.Base.Segment, l.Base.Offset)
			}
			for _, k := range l.Cuts {
				fmt.Fprintf(w, ", above %d cut before %d/%d", k.After, k.Below.Segment, k.Below.Offset)
			}
			for _, m := range l.Moves {
				fmt.Fprintf(w, ", through %d moved to %d/%d", m.Through, m.Below.Segment, m.Below.Offset)
			}
			if l.UserBytes > 0 {
				fmt.Fprintf(w, ", user record %d bytes", l.UserBytes)
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\nproblems (%d errors, %d warnings):\n", r.Errors(), r.Warnings())
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	if len(r.Other) > 0 {
		fmt.Fprintln(w, "\nother files:")
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		for _, o := range r.Other {
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", o.Name, o.Size, o.Note)
		}
		tw.Flush()
	}
}
