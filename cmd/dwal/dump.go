package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/inspect"
)

const dumpUsage = `usage: dwal dump DIR [--from LSN] [--to LSN] [--hex|--raw] [--key-file F]

Prints the entries of the WAL directory DIR in write order (segment by
segment, batch by batch), each segment up to the end of its log: nothing past
it (a torn tail, preallocated zeros) is ever printed. --from and --to bound
the LSNs, both inclusive (LSNs may be unordered inside a batch, so every
segment that may hold one is read). Encrypted segments need --key-file.

Output: a header line, then one line per entry:
  SEGMENT OFFSET LSN LENGTH |preview|
where OFFSET is the entry's byte offset in the segment file (for an encrypted
segment, its batch's) and the preview shows its first bytes, '.' for a byte
that is not printable ASCII. --hex adds a hex dump of every entry; --raw
writes the entries' bytes only, back to back, and nothing else. A summary
goes to stderr. Nothing is locked or modified.

Exit status 1 when a segment cannot be read or a sealed segment disagrees
with its .meta (the other segments are still printed).`

const (
	previewLen = 32
	dumpHead   = "%-7s  %10s  %12s  %8s  %s\n"
	dumpRow    = "%06d   %10d  %12d  %8d  %s\n"
)

func runDump(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("dump", dumpUsage, stderr)
	var from, to lsnFlag
	fl.Var(&from, "from", "first LSN to print (default: the smallest)")
	fl.Var(&to, "to", "last LSN to print (default: the largest)")
	asHex := fl.Bool("hex", false, "follow each line with a hex dump of the entry")
	raw := fl.Bool("raw", false, "write the entries' bytes only, back to back")
	keyFile := fl.String("key-file", "", "file holding the AES-256 key of encrypted segments: 32 bytes, or 64 hex digits")
	dir, code, ok := parseDir(fl, args, stderr)
	if !ok {
		return code
	}
	if *asHex && *raw {
		return badUsage(fl, stderr, "--hex and --raw exclude each other")
	}
	hi := engine.LSN(^uint64(0))
	if to.set {
		hi = engine.LSN(to.v)
	}
	if from.v > uint64(hi) {
		return badUsage(fl, stderr, "--from %d is above --to %d", from.v, hi)
	}
	opts := inspect.DumpOptions{From: engine.LSN(from.v), To: hi}
	if *keyFile != "" {
		c, err := loadCipher(*keyFile)
		if err != nil {
			return fail(stderr, "dump", err)
		}
		opts.Cipher = c
	}
	out := bufio.NewWriterSize(stdout, 1<<16)
	if !*raw {
		fmt.Fprintf(out, dumpHead, "SEGMENT", "OFFSET", "LSN", "LENGTH", "DATA")
	}
	var (
		n        uint64
		min, max engine.LSN
		segs     = map[uint64]bool{}
		werr     error
	)
	err := inspect.Dump(dir, opts, func(seg uint64, off int64, lsn engine.LSN, data []byte) error {
		if n == 0 || lsn < min {
			min = lsn
		}
		if n == 0 || lsn > max {
			max = lsn
		}
		n++
		segs[seg] = true
		switch {
		case *raw:
			_, werr = out.Write(data)
		default:
			_, werr = fmt.Fprintf(out, dumpRow, seg, off, lsn, len(data), "|"+preview(data)+"|")
			if werr == nil && *asHex {
				_, werr = out.WriteString(hex.Dump(data))
			}
		}
		return werr
	})
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	summary := fmt.Sprintf("dump %s: %d entries from %d segments", dir, n, len(segs))
	if n > 0 {
		summary += fmt.Sprintf(", LSN %d..%d", min, max)
	}
	fmt.Fprintln(stderr, summary)
	if err != nil {
		return fail(stderr, "dump", err)
	}
	return 0
}

// loadCipher reads an AES-256 key (32 raw bytes, or 64 hex digits and an
// optional newline) and returns its engine.Cipher.
func loadCipher(path string) (engine.Cipher, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if t := strings.TrimSpace(string(b)); len(t) == 64 {
		if k, err := hex.DecodeString(t); err == nil {
			b = k
		}
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("key file %s: %d bytes; want 32 bytes or 64 hex digits", path, len(b))
	}
	return engine.NewAESGCM(b)
}

// preview shows the first bytes of b, '.' for bytes that are not printable
// ASCII, and "..." when b is longer.
func preview(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i == previewLen {
			sb.WriteString("...")
			break
		}
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		sb.WriteByte(c)
	}
	return sb.String()
}
