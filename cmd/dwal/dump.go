package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/inspect"
)

const dumpUsage = `usage: dwal dump DIR [--log ID] [--from LSN] [--to LSN] [--hex|--raw] [--key-file F]...

Prints the live entries of the WAL directory DIR in write order (segment by
segment, batch by batch), each segment up to the end of its log: nothing past
it (a torn tail, preallocated zeros) is ever printed, nor what a log's
deletions delete. --log picks one log of a set of logs (a directory of one
log holds log 0's entries). --from and --to bound the LSNs, both inclusive
(LSNs may be unordered inside a batch, so every segment that may hold one is
read). Encrypted segments need --key-file.

Keys: --key-file may be given several times; the keys of all the files form
one keyring, and each segment opens with the key its header names. A file
holds either one key, 32 raw bytes or 64 hex digits, which is key 0 (the
ID engine.NewAESGCM gives, and the key of segments written before key IDs),
or lines ID:HEX, a decimal key ID and 64 hex digits (blank lines and lines
starting with # are skipped), as a keyring of engine.NewAESGCMKeyring.

Output: a header line, then one line per entry:
  SEGMENT OFFSET LOG LSN LENGTH |preview|
where OFFSET is the entry's byte offset in the segment file (for an encrypted
segment, its batch's) and the preview shows its first bytes, '.' for a byte
that is not printable ASCII. --hex adds a hex dump of every entry; --raw
writes the entries' bytes only, back to back, and nothing else. A summary
goes to stderr. Nothing is locked or modified.

Exit status 1 when a segment cannot be read or a sealed segment disagrees
with its .meta (the other segments are still printed).`

const (
	previewLen = 32
	dumpHead   = "%-7s  %10s  %8s  %12s  %8s  %s\n"
	dumpRow    = "%06d   %10d  %8d  %12d  %8d  %s\n"
)

func runDump(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("dump", dumpUsage, stderr)
	var from, to lsnFlag
	fl.Var(&from, "from", "first LSN to print (default: the smallest)")
	fl.Var(&to, "to", "last LSN to print (default: the largest)")
	asHex := fl.Bool("hex", false, "follow each line with a hex dump of the entry")
	raw := fl.Bool("raw", false, "write the entries' bytes only, back to back")
	var logID lsnFlag
	fl.Var(&logID, "log", "the log of a set whose entries to print (default: every log)")
	var keyFiles keyFileFlag
	fl.Var(&keyFiles, "key-file", "file holding AES-256 keys of encrypted segments: one key (32 bytes, or 64 hex digits) or ID:HEX lines; repeatable")
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
	if logID.set {
		opts.Logs = []uint64{logID.v}
	}
	if len(keyFiles) > 0 {
		c, err := loadKeyring(keyFiles)
		if err != nil {
			return fail(stderr, "dump", err)
		}
		opts.Cipher = c
	}
	out := bufio.NewWriterSize(stdout, 1<<16)
	if !*raw {
		fmt.Fprintf(out, dumpHead, "SEGMENT", "OFFSET", "LOG", "LSN", "LENGTH", "DATA")
	}
	var (
		n        uint64
		min, max engine.LSN
		segs     = map[uint64]bool{}
		werr     error
	)
	err := inspect.Dump(dir, opts, func(seg uint64, off int64, log uint64, lsn engine.LSN, data []byte) error {
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
			_, werr = fmt.Fprintf(out, dumpRow, seg, off, log, lsn, len(data), "|"+preview(data)+"|")
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

// keyFileFlag is the repeatable --key-file.
type keyFileFlag []string

func (f *keyFileFlag) String() string { return strings.Join(*f, ",") }

func (f *keyFileFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}

// loadKeyring reads the key files (see dumpUsage) and returns the keyring
// of all their keys.
func loadKeyring(paths []string) (engine.Cipher, error) {
	keys := map[uint32][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		got, err := parseKeyFile(b)
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", p, err)
		}
		for id, k := range got {
			if old, ok := keys[id]; ok && !bytes.Equal(old, k) {
				return nil, fmt.Errorf("key file %s: key %d differs from the one an earlier key file gave", p, id)
			}
			keys[id] = k
		}
	}
	return engine.NewAESGCMKeyring(slices.Max(slices.Collect(maps.Keys(keys))), keys)
}

// parseKeyFile reads one key file: a bare key (ID 0) or ID:HEX lines.
func parseKeyFile(b []byte) (map[uint32][]byte, error) {
	t := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(t); err == nil && len(k) == 32 {
		return map[uint32][]byte{0: k}, nil
	}
	if len(b) == 32 {
		return map[uint32][]byte{0: b}, nil
	}
	if !strings.Contains(t, ":") {
		return nil, fmt.Errorf("%d bytes; want 32 bytes or 64 hex digits, or ID:HEX lines", len(b))
	}
	keys := map[uint32][]byte{}
	for i, line := range strings.Split(t, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ids, hexKey, _ := strings.Cut(line, ":")
		id, err := strconv.ParseUint(strings.TrimSpace(ids), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("line %d: key ID %q is not a 32-bit unsigned integer", i+1, ids)
		}
		k, err := hex.DecodeString(strings.TrimSpace(hexKey))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("line %d: key %d is not 64 hex digits", i+1, id)
		}
		if _, dup := keys[uint32(id)]; dup {
			return nil, fmt.Errorf("line %d: key %d given twice", i+1, id)
		}
		keys[uint32(id)] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("no key in it")
	}
	return keys, nil
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
