package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dwal-project/dwal/engine"
	"github.com/dwal-project/dwal/engine/inspect"
)

// batchHeaderLen is the size of a batch header (engine/doc.go's diagram).
const batchHeaderLen = 48

// runCLI runs the dwal command in-process.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeWAL writes 13 batches of 3 printable entries (LSN 1..39) with the
// engine, in 16 KiB segments: segments 1..4 sealed, 3 batches each, and
// segment 5, with the last batch, left active (Close seals it; its .meta is
// removed after, as a writer that crashed after its last batch leaves it).
func writeWAL(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := engine.DefaultConfig(dir)
	cfg.SegmentSize = 16 << 10
	c, err := engine.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for b := range 13 {
		var es []*engine.PendingEntry
		for i := range 3 {
			lsn := engine.LSN(3*b + i + 1)
			es = append(es, engine.NewAsyncEntry(lsn, []byte(fmt.Sprintf("entry %d of batch %d %s", lsn, b, strings.Repeat("x", 900)))))
		}
		if _, err := c.Flush(es, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "000005.log.meta")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// entryOffset is where the engine says entry lsn lies: its segment and the
// offset of its entry header.
func entryOffset(t *testing.T, dir string, lsn engine.LSN) (uint64, int64) {
	t.Helper()
	var seg uint64
	off := int64(-1)
	inspect.Dump(dir, inspect.DumpOptions{From: lsn, To: lsn}, func(s uint64, o int64, _ uint64, _ engine.LSN, _ []byte) error {
		seg, off = s, o
		return nil
	})
	if off < 0 {
		t.Fatalf("LSN %d not found", lsn)
	}
	return seg, off
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every name, mode, size, mtime and content hash in dir.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, e := range ents {
		info, _ := e.Info()
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s %v %d %d %x\n", e.Name(), info.Mode(), info.Size(), info.ModTime().UnixNano(), sha256.Sum256(b))
	}
	return sb.String()
}

// corruptSealed flips a byte inside the second batch of sealed segment 2
// (LSN 13..15) and returns that batch's offset.
func corruptSealed(t *testing.T, dir string) int64 {
	t.Helper()
	seg, off := entryOffset(t, dir, 13) // first entry of segment 2's second batch
	if seg != 2 {
		t.Fatalf("LSN 13 in segment %d", seg)
	}
	flip(t, filepath.Join(dir, "000002.log"), off+20)
	return off - batchHeaderLen
}

// tearLast flips a byte in the only batch of the active segment 5.
func tearLast(t *testing.T, dir string) int64 {
	t.Helper()
	seg, off := entryOffset(t, dir, 37)
	if seg != 5 {
		t.Fatalf("LSN 37 in segment %d", seg)
	}
	flip(t, filepath.Join(dir, "000005.log"), off+20)
	return off - batchHeaderLen
}

func TestUsageAndHelp(t *testing.T) {
	if code, _, errs := runCLI(t); code != 2 || !strings.Contains(errs, "usage: dwal COMMAND") {
		t.Errorf("no args: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, "--help"); code != 0 || !strings.Contains(errs, "exit codes") {
		t.Errorf("--help: %d %q", code, errs)
	}
	if code, _, _ := runCLI(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
	for _, cmd := range []string{"inspect", "verify", "dump", "doctor", "demo"} {
		code, _, errs := runCLI(t, cmd, "--help")
		if code != 0 || !strings.Contains(errs, "usage: dwal "+cmd) {
			t.Errorf("%s --help: %d %q", cmd, code, errs)
		}
		if code, _, _ := runCLI(t, cmd, "--no-such-flag"); code != 2 {
			t.Errorf("%s --no-such-flag: %d", cmd, code)
		}
	}
	for _, args := range [][]string{
		{"inspect"}, {"verify"}, {"dump"}, {"inspect", "a", "b"}, {"doctor", "a", "b"},
		{"dump", "x", "--hex", "--raw"}, {"dump", "x", "--from", "nope"}, {"dump", "x", "--from", "5", "--to", "4"},
		{"doctor", "--duration", "-1s"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing")
	for _, cmd := range []string{"inspect", "verify", "dump", "doctor"} {
		code, _, errs := runCLI(t, cmd, missing)
		if code != 1 || !strings.Contains(errs, "no such file or directory") {
			t.Errorf("%s on a missing directory: %d %q", cmd, code, errs)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("a command created the missing directory")
	}
}

// The benchmark is the dwalbench command, not a subcommand: dwal bench is
// an unknown command, and the usage says where the benchmark went.
func TestNoBenchSubcommand(t *testing.T) {
	code, _, errs := runCLI(t, "bench", "--quick")
	if code != 2 || !strings.Contains(errs, `unknown command "bench"`) {
		t.Errorf("dwal bench: %d %q", code, errs)
	}
	if !strings.Contains(errs, "dwalbench") {
		t.Errorf("the usage does not name the dwalbench command: %q", errs)
	}
}

// The dwal tool links none of the benchmark's libraries (plots, HDR
// histograms) nor the metrics package's Prometheus client, which it does
// not use.
func TestLeanDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, heavy := range []string{"gonum.org/", "hdrhistogram", "prometheus", "/dwal/bench", "/dwal/metrics"} {
			if strings.Contains(dep, heavy) {
				t.Errorf("cmd/dwal depends on %s", dep)
			}
		}
	}
}

func TestInspectCommand(t *testing.T) {
	dir := writeWAL(t)
	code, out, errs := runCLI(t, "inspect", dir)
	if code != 0 {
		t.Fatalf("inspect: %d %s", code, errs)
	}
	t.Logf("\n%s", out)
	if !strings.Contains(out, "5 segments, 13 batches, 39 entries") {
		t.Errorf("summary missing:\n%s", out)
	}
	rows := regexp.MustCompile(`(?m)^(\d{6})\s+(\w+)\s+\d+\s+\d+\s+0\s+(\d+)\s+(\d+)\s+(\S+)\s+\S+\s+(\w+)\s+(\S+)\s+3\s+\d+\s+no\s+[0-9a-f]{16}`).FindAllStringSubmatch(out, -1)
	if len(rows) != 5 {
		t.Fatalf("%d segment rows, want 5:\n%s", len(rows), out)
	}
	for i, r := range rows {
		want := []string{fmt.Sprintf("%06d", i+1), "sealed", "3", "9", fmt.Sprintf("%d..%d", 9*i+1, 9*i+9), "ok", "ok"}
		if i == 4 {
			want = []string{"000005", "active", "1", "3", "37..39", "missing", "-"}
		}
		if fmt.Sprint(r[1:]) != fmt.Sprint(want) {
			t.Errorf("row %d: %v, want %v", i, r[1:], want)
		}
	}

	code, out, _ = runCLI(t, "inspect", "--json", dir)
	var rep inspect.Report
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("--json: %d %v\n%s", code, err, out)
	}
	if len(rep.Segments) != 5 || rep.Segments[4].State != inspect.SegmentActive || rep.Segments[0].Header.Salt == 0 || len(rep.Problems) != 0 {
		t.Errorf("--json report: %+v", rep)
	}
}

func TestInspectMarksTheBrokenSegment(t *testing.T) {
	dir := writeWAL(t)
	off := corruptSealed(t, dir)
	before := snapshot(t, dir)
	code, out, _ := runCLI(t, "inspect", dir)
	if code != 1 {
		t.Errorf("inspect of a corrupt directory: exit %d, want 1", code)
	}
	if !regexp.MustCompile(`(?m)^000002\s+broken\s+\d+\s+` + fmt.Sprint(off) + `\s`).MatchString(out) {
		t.Errorf("segment 2 not marked broken with its log ending at %d:\n%s", off, out)
	}
	for _, id := range []string{"000001", "000003", "000004"} {
		if !regexp.MustCompile(`(?m)^` + id + `\s+sealed`).MatchString(out) {
			t.Errorf("segment %s not sealed:\n%s", id, out)
		}
	}
	if !strings.Contains(out, fmt.Sprintf("error: 000002.log at offset %d: batch 2: CRC mismatch", off)) {
		t.Errorf("problem not listed:\n%s", out)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("inspect modified the directory")
	}
}

func TestVerifyCommand(t *testing.T) {
	dir := writeWAL(t)
	code, out, _ := runCLI(t, "verify", dir)
	if code != 0 || !strings.Contains(out, "5 segments, 13 batches, 39 entries: clean") {
		t.Fatalf("clean: %d\n%s", code, out)
	}

	off := corruptSealed(t, dir)
	before := snapshot(t, dir)
	code, out, _ = runCLI(t, "verify", dir)
	t.Logf("\n%s", out)
	if code != 1 {
		t.Errorf("corrupt: exit %d, want 1", code)
	}
	if !strings.Contains(out, fmt.Sprintf("error: 000002.log at offset %d: batch 2: CRC mismatch", off)) ||
		!strings.Contains(out, "error: 000002.log.meta: says 9 entries") || !strings.Contains(out, "2 errors, 0 warnings") {
		t.Errorf("output does not name the file, offset and problem:\n%s", out)
	}
	code, out, _ = runCLI(t, "verify", "--json", dir)
	var v struct {
		OK       bool
		Problems []inspect.Problem
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.OK || len(v.Problems) != 2 || v.Problems[0].Offset != off {
		t.Errorf("--json: %d %v %+v", code, err, v)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("verify modified the directory:\n%s\n%s", before, after)
	}
}

func TestVerifyTornTailIsAWarning(t *testing.T) {
	dir := writeWAL(t)
	off := tearLast(t, dir)
	code, out, _ := runCLI(t, "verify", dir)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("warning: 000005.log at offset %d: batch 1: CRC mismatch", off)) ||
		!strings.Contains(out, "0 errors, 1 warnings") {
		t.Errorf("torn tail: %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "verify", "--strict", dir); code != 1 {
		t.Errorf("--strict: exit %d, want 1", code)
	}
	code, out, _ = runCLI(t, "inspect", dir)
	if code != 0 || !regexp.MustCompile(`(?m)^000005\s+active\s+\d+\s+\d+\s+[1-9]\d*\s+0\s+0\s`).MatchString(out) {
		t.Errorf("inspect: %d\n%s", code, out)
	}
}

var dumpLine = regexp.MustCompile(`^(\d{6})\s+(\d+)\s+0\s+(\d+)\s+(\d+)\s+\|(.*)\|$`) // segment, offset, log 0, LSN, length, preview

// entryLines splits dump's output after its header line.
func entryLines(out string) []string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "SEGMENT ") {
		return nil
	}
	return lines[1:]
}

func TestDumpCommand(t *testing.T) {
	dir := writeWAL(t)
	before := snapshot(t, dir)
	code, out, errs := runCLI(t, "dump", dir)
	if code != 0 {
		t.Fatalf("dump: %d %s", code, errs)
	}
	lines := entryLines(out)
	if len(lines) != 39 {
		t.Fatalf("%d lines, want 39:\n%s", len(lines), out)
	}
	for i, l := range lines {
		m := dumpLine.FindStringSubmatch(l)
		lsn := i + 1
		want := fmt.Sprintf("entry %d of batch %d %s", lsn, i/3, strings.Repeat("x", 900))
		if m == nil || m[1] != fmt.Sprintf("%06d", i/9+1) || m[3] != fmt.Sprint(lsn) || m[4] != fmt.Sprint(len(fmt.Sprintf("entry %d of batch %d ", lsn, i/3))+900) ||
			!strings.HasPrefix(want, strings.TrimSuffix(m[5], "...")) || !strings.HasSuffix(m[5], "...") {
			t.Fatalf("line %d: %q", i, l)
		}
		if seg, off := entryOffset(t, dir, engine.LSN(lsn)); m[2] != fmt.Sprint(off) || m[1] != fmt.Sprintf("%06d", seg) {
			t.Fatalf("line %d: offset %s, want %d", i, m[2], off)
		}
	}
	if !strings.Contains(errs, "39 entries from 5 segments, LSN 1..39") {
		t.Errorf("summary: %q", errs)
	}

	// Ranges, in both flag orders.
	for _, args := range [][]string{{"dump", dir, "--from", "10", "--to", "12"}, {"dump", "--from", "10", "--to", "12", dir}} {
		code, out, _ = runCLI(t, args...)
		if code != 0 || len(entryLines(out)) != 3 || !strings.Contains(out, "|entry 10 ") || !strings.Contains(out, "|entry 12 ") {
			t.Errorf("%v: %d\n%s", args, code, out)
		}
	}
	// --raw: the entries' bytes, nothing else.
	code, out, _ = runCLI(t, "dump", dir, "--raw", "--from", "2", "--to", "3")
	want := fmt.Sprintf("entry 2 of batch 0 %sentry 3 of batch 0 %s", strings.Repeat("x", 900), strings.Repeat("x", 900))
	if code != 0 || out != want {
		t.Errorf("--raw: %d %q", code, out)
	}
	// --hex: a hex dump after each line.
	code, out, _ = runCLI(t, "dump", dir, "--hex", "--from", "1", "--to", "1")
	if code != 0 || !strings.Contains(out, "00000000  65 6e 74 72 79 20 31 20") || !strings.Contains(out, "|entry 1 of batch|") {
		t.Errorf("--hex: %d\n%.400s", code, out)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("dump modified the directory")
	}
}

func TestDumpStopsAtTheEndOfTheLog(t *testing.T) {
	dir := writeWAL(t)
	tearLast(t, dir)
	code, out, errs := runCLI(t, "dump", dir)
	lines := entryLines(out)
	if code != 0 || len(lines) != 36 || !strings.Contains(lines[35], "|entry 36 ") {
		t.Fatalf("torn tail: %d, %d lines, %s", code, len(lines), errs)
	}

	off := corruptSealed(t, dir)
	code, out, errs = runCLI(t, "dump", dir)
	if code != 1 || !strings.Contains(errs, fmt.Sprintf("000002.log: log ends at offset %d (CRC mismatch) after 3 entries", off)) {
		t.Errorf("corrupt sealed segment: %d %s", code, errs)
	}
	lines = entryLines(out)
	if len(lines) != 30 {
		t.Errorf("%d lines, want 30 (segment 2 up to its end of log, the others whole)", len(lines))
	}
	for _, l := range lines {
		m := dumpLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("bad line %q", l)
		}
		if lsn, _ := strconv.Atoi(m[3]); m[1] == "000002" && lsn > 12 {
			t.Errorf("line past the end of segment 2's log: %q", l)
		}
	}
}

func TestDoctorOnTheTempDir(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runCLI(t, "doctor", dir, "--duration", "300ms")
	if code != 0 {
		t.Fatalf("doctor: %d %s", code, errs)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{"kernel:", "io_uring:", "file system:", "O_DIRECT:", "DIO alignment:", "CPU:", "backend (Auto):", "advice:", "AES instructions: "} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	info, err := engine.ProbeBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, fmt.Sprintf("backend (Auto):  %s: %s", info.Name, info.Reason)) {
		t.Errorf("backend line does not match engine.ProbeBackend %+v:\n%s", info, out)
	}
	checkDoctorPlatform(t, dir, out)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("doctor left files behind: %v", ents)
	}
}

func TestDumpEncryptedWithKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{0x42}, 32)
	ciph, err := engine.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.DefaultConfig(dir)
	cfg.Cipher = ciph
	c, err := engine.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e := engine.NewAsyncEntry(engine.LSN(i+1), []byte(fmt.Sprintf("secret %d", i+1)))
		if _, err := c.Flush([]*engine.PendingEntry{e}, true); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	code, out, _ := runCLI(t, "inspect", dir)
	if code != 0 || !regexp.MustCompile(`(?m)^000001\s+sealed\s.*\s+key 0\s+[0-9a-f]{16}`).MatchString(out) {
		t.Errorf("inspect does not show the segment encrypted: %d\n%s", code, out)
	}
	code, out, errs := runCLI(t, "dump", dir)
	if code != 1 || len(entryLines(out)) != 0 || !strings.Contains(errs, "cannot decrypt") {
		t.Errorf("no key: %d %q %q", code, out, errs)
	}
	keyFiles := map[string][]byte{"raw": key, "hex": []byte(fmt.Sprintf("%x\n", key))}
	for name, content := range keyFiles {
		kf := filepath.Join(t.TempDir(), "key")
		os.WriteFile(kf, content, 0o600)
		code, out, errs = runCLI(t, "dump", dir, "--key-file", kf)
		lines := entryLines(out)
		if code != 0 || len(lines) != 3 || !strings.HasSuffix(lines[2], "|secret 3|") {
			t.Errorf("%s key: %d %q %q", name, code, out, errs)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("short"), 0o600)
	if code, _, errs := runCLI(t, "dump", dir, "--key-file", bad); code != 1 || !strings.Contains(errs, "want 32 bytes or 64 hex digits") {
		t.Errorf("bad key file: %d %q", code, errs)
	}
}

// Keys rotated from key 0 (NewAESGCM) to key 3: dump needs both, given as
// two --key-file flags, one a bare key and one of ID:HEX lines.
func TestDumpWithRotatedKeys(t *testing.T) {
	dir := t.TempDir()
	k0, k3 := bytes.Repeat([]byte{0x10}, 32), bytes.Repeat([]byte{0x33}, 32)
	write := func(ciph engine.Cipher, lsn engine.LSN) {
		t.Helper()
		cfg := engine.DefaultConfig(dir)
		cfg.Cipher = ciph
		c, err := engine.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e := engine.NewAsyncEntry(lsn, []byte(fmt.Sprintf("secret %d", lsn)))
		if _, err := c.Flush([]*engine.PendingEntry{e}, true); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	old, err := engine.NewAESGCM(k0)
	if err != nil {
		t.Fatal(err)
	}
	write(old, 1)
	rotated, err := engine.NewAESGCMKeyring(3, map[uint32][]byte{0: k0, 3: k3})
	if err != nil {
		t.Fatal(err)
	}
	write(rotated, 2)

	code, out, _ := runCLI(t, "inspect", dir)
	if code != 0 || !regexp.MustCompile(`(?m)^000001\s.*\s+key 0\s+[0-9a-f]{16}`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^000002\s.*\s3\s+4096\s+key 3\s+[0-9a-f]{16}`).MatchString(out) {
		t.Errorf("inspect does not show each segment's format and key: %d\n%s", code, out)
	}
	kdir := t.TempDir()
	bare, lines := filepath.Join(kdir, "k0"), filepath.Join(kdir, "ring")
	os.WriteFile(bare, []byte(fmt.Sprintf("%x\n", k0)), 0o600)
	os.WriteFile(lines, []byte(fmt.Sprintf("# rotated\n3:%x\n", k3)), 0o600)
	code, out, errs := runCLI(t, "dump", dir, "--key-file", bare, "--key-file", lines)
	if got := entryLines(out); code != 0 || len(got) != 2 || !strings.HasSuffix(got[0], "|secret 1|") || !strings.HasSuffix(got[1], "|secret 2|") {
		t.Errorf("both keys: %d %q %q", code, out, errs)
	}
	code, out, errs = runCLI(t, "dump", dir, "--key-file", lines)
	if got := entryLines(out); code != 1 || len(got) != 1 || !strings.Contains(errs, "segment 1 is encrypted under key 0") {
		t.Errorf("key 3 only: %d %q %q", code, out, errs)
	}
	os.WriteFile(lines, []byte(fmt.Sprintf("0:%x\n", k3)), 0o600)
	if code, _, errs := runCLI(t, "dump", dir, "--key-file", bare, "--key-file", lines); code != 1 || !strings.Contains(errs, "key 0 differs") {
		t.Errorf("one ID, two keys: %d %q", code, errs)
	}
	os.WriteFile(lines, []byte("x:00\n"), 0o600)
	if code, _, errs := runCLI(t, "dump", dir, "--key-file", lines); code != 1 || !strings.Contains(errs, "line 1") {
		t.Errorf("a bad line: %d %q", code, errs)
	}
}

// writeSet writes a set of three logs (IDs 1, 2 and 1<<40) in 16 KiB
// segments, entry "log L entry N" for N = 1..30 of each, interleaved; log
// 2 deletes below 11 and truncates after 25; then closes it.
func writeSet(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := engine.DefaultConfig(dir)
	cfg.SegmentSize = 16 << 10
	s, err := engine.OpenSet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for n := engine.LSN(1); n <= 30; n++ {
		for _, id := range []uint64{1, 2, 1 << 40} {
			data := fmt.Sprintf("log %d entry %d %s", id, n, strings.Repeat("s", 500))
			if _, err := s.Log(id).Flush([]*engine.PendingEntry{engine.NewAsyncEntry(n, []byte(data))}, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Log(2).DeleteBefore(11); err != nil {
		t.Fatal(err)
	}
	if err := s.Log(2).TruncateAfter(25); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCommandsOnASet: inspect, verify and dump read a set's directory:
// its logs, their deletions, one log's entries (dump --log).
func TestCommandsOnASet(t *testing.T) {
	dir := writeSet(t)
	code, out, errs := runCLI(t, "verify", dir)
	if code != 0 || !strings.Contains(out, "clean") {
		t.Fatalf("verify: %d %s\n%s", code, errs, out)
	}
	code, out, errs = runCLI(t, "inspect", dir)
	if code != 0 {
		t.Fatalf("inspect: %d %s", code, errs)
	}
	t.Logf("\n%s", out)
	if !strings.Contains(out, "log 2: first LSN 11, above 25 cut before ") {
		t.Errorf("inspect does not show log 2's deletions:\n%s", out)
	}
	rows := regexp.MustCompile(`(?m)^\d{6}\s+sealed\s+\d+\s+\d+\s+0\s+\d+\s+3\s+\S+\s+3\s`).FindAllString(out, -1)
	if len(rows) != 30 {
		t.Errorf("%d sealed segments with 3 entries of 3 logs, want 30:\n%s", len(rows), out)
	}
	code, out, errs = runCLI(t, "dump", dir, "--log", "2")
	if code != 0 {
		t.Fatalf("dump --log 2: %d %s", code, errs)
	}
	line := regexp.MustCompile(`^(\d{6})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\|(.*)\|$`)
	var lsns []string
	for _, l := range entryLines(out) {
		m := line.FindStringSubmatch(l)
		if m == nil || m[3] != "2" || !strings.HasPrefix(m[6], "log 2 entry "+m[4]+" ") {
			t.Fatalf("dump --log 2: line %q", l)
		}
		lsns = append(lsns, m[4])
	}
	if len(lsns) != 15 || lsns[0] != "11" || lsns[14] != "25" {
		t.Fatalf("dump --log 2 printed LSNs %v, want the live 11..25", lsns)
	}
	code, out, _ = runCLI(t, "dump", dir, "--log", "1099511627776", "--from", "30")
	if lines := entryLines(out); code != 0 || len(lines) != 1 || !strings.Contains(lines[0], "|log 1099511627776 entry 30 ") {
		t.Fatalf("dump --log 1<<40 --from 30: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "dump", dir)
	if lines := entryLines(out); code != 0 || len(lines) != 30+15+30 {
		t.Fatalf("dump of every log: %d, %d lines, want 75", code, len(lines))
	}
}
