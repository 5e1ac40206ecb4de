package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/errorfs"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

func mustKeyring(t *testing.T, current uint32, keys map[uint32][]byte) Cipher {
	t.Helper()
	c, err := NewAESGCMKeyring(current, keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewAESGCMKeyringChecksKeys(t *testing.T) {
	for name, tc := range map[string]struct {
		current uint32
		keys    map[uint32][]byte
	}{
		"no keys":          {0, nil},
		"no current key":   {2, map[uint32][]byte{1: testKey(1)}},
		"short key":        {1, map[uint32][]byte{1: testKey(1), 2: testKey(2)[:16]}},
		"long current key": {1, map[uint32][]byte{1: append(testKey(1), 0)}},
	} {
		if _, err := NewAESGCMKeyring(tc.current, tc.keys); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
	}
	keys := map[uint32][]byte{7: testKey(7)}
	r := mustKeyring(t, 7, keys)
	keys[7][0] ^= 1 // the ring holds a copy
	info := bytes.Repeat([]byte{9}, segment.KeyInfoLen)
	sc, err := r.Segment(7, info)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := sc.Encrypt(nil, []byte("x"), nil)
	sc2, _ := mustKeyring(t, 7, map[uint32][]byte{7: testKey(7)}).Segment(7, info)
	if _, err := sc2.Decrypt(nil, ct, nil); err != nil {
		t.Fatalf("the ring's key changed with the caller's map: %v", err)
	}
	if r.KeyID() != 7 {
		t.Fatalf("KeyID %d", r.KeyID())
	}
	if _, err := r.Segment(8, info); err == nil || !strings.Contains(err.Error(), "key 8") {
		t.Fatalf("a key the ring lacks: %v", err)
	}
}

// A segment's nonces: the count of Encrypt calls, then random bytes; two
// ciphers of one segment (a key used by two writers) start the count alike
// but differ in the random bytes; the count never wraps.
func TestSegmentNonces(t *testing.T) {
	info := bytes.Repeat([]byte{3}, segment.KeyInfoLen)
	r := mustCipher(t, 1)
	a, _ := r.Segment(0, info)
	b, _ := r.Segment(0, info)
	seen := map[string]bool{}
	for i := range 1000 {
		for _, sc := range []SegmentCipher{a, b} {
			ct, err := sc.Encrypt(nil, []byte("entries"), []byte("ad"))
			if err != nil {
				t.Fatal(err)
			}
			if got := binary.BigEndian.Uint32(ct); got != uint32(i) {
				t.Fatalf("Encrypt %d: nonce count %d", i, got)
			}
			if n := string(ct[:nonceLen]); seen[n] {
				t.Fatalf("nonce %x repeated", ct[:nonceLen])
			} else {
				seen[n] = true
			}
			// Either cipher of the segment decrypts it: one key.
			if p, err := a.Decrypt(nil, ct, []byte("ad")); err != nil || string(p) != "entries" {
				t.Fatalf("Decrypt: %q %v", p, err)
			}
		}
	}
	g := a.(*segmentGCM)
	g.n.Store(maxEncrypts - 1)
	ct, err := g.Encrypt(nil, nil, nil)
	if err != nil || binary.BigEndian.Uint32(ct) != maxEncrypts-1 {
		t.Fatalf("last nonce: %x %v", ct, err)
	}
	if _, err := g.Encrypt(nil, nil, nil); !errors.Is(err, errNonceBudget) {
		t.Fatalf("past the budget: %v", err)
	}
}

// keyLog is a Cipher that records, over a keyring, every segment key the
// engine asks for (the key recomputed from its master key and info) and
// every nonce encrypted under it, with the segment and batch it was for.
type keyLog struct {
	ring    Cipher
	masters map[uint32][]byte
	mu      sync.Mutex
	infos   map[string]string // derived key -> info it came from
	asked   []uint32          // the key ID of every Segment call
	sealed  []encryption
}

// encryption is one Encrypt call.
type encryption struct {
	key, nonce string
	seg, seq   uint64
}

func newKeyLog(t *testing.T, current uint32, keys map[uint32][]byte) *keyLog {
	return &keyLog{ring: mustKeyring(t, current, keys), masters: keys, infos: map[string]string{}}
}

func (l *keyLog) Name() string  { return l.ring.Name() }
func (l *keyLog) Overhead() int { return l.ring.Overhead() }
func (l *keyLog) KeyID() uint32 { return l.ring.KeyID() }

func (l *keyLog) Segment(keyID uint32, info []byte) (SegmentCipher, error) {
	sc, err := l.ring.Segment(keyID, info)
	if err != nil {
		return nil, err
	}
	k, err := deriveKey(l.masters[keyID], info)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, keyID)
	if old, ok := l.infos[string(k)]; ok && old != string(info) {
		return nil, fmt.Errorf("infos %x and %x derive the same key", old, info)
	}
	l.infos[string(k)] = string(info)
	return &loggedSegment{SegmentCipher: sc, log: l, key: string(k)}, nil
}

type loggedSegment struct {
	SegmentCipher
	log *keyLog
	key string
}

func (s *loggedSegment) Encrypt(dst, plaintext, ad []byte) ([]byte, error) {
	n := len(dst)
	out, err := s.SegmentCipher.Encrypt(dst, plaintext, ad)
	if err == nil {
		s.log.mu.Lock()
		s.log.sealed = append(s.log.sealed, encryption{key: s.key, nonce: string(out[n : n+nonceLen]),
			seg: binary.LittleEndian.Uint64(ad[0:]), seq: binary.LittleEndian.Uint64(ad[16:])})
		s.log.mu.Unlock()
	}
	return out, err
}

// check fails t when a nonce repeats under a key, when a key encrypted the
// batches of more than one segment, or when fewer than segs keys were used.
func (l *keyLog) check(t *testing.T, segs int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	nonces := map[[2]string]encryption{}
	segOf := map[string]uint64{}
	for _, e := range l.sealed {
		k := [2]string{e.key, e.nonce}
		if old, ok := nonces[k]; ok {
			t.Fatalf("nonce %x repeated under one key: segment %d batch %d, then segment %d batch %d", e.nonce, old.seg, old.seq, e.seg, e.seq)
		}
		nonces[k] = e
		if s, ok := segOf[e.key]; ok && s != e.seg {
			t.Fatalf("one key encrypted batches of segments %d and %d", s, e.seg)
		}
		segOf[e.key] = e.seg
	}
	if len(segOf) < segs {
		t.Fatalf("%d keys encrypted batches, want at least %d (one per segment)", len(segOf), segs)
	}
}

func writeN(t *testing.T, c *Coordinator, from LSN, n int) LSN {
	t.Helper()
	for range n {
		mustFlush(t, c, []*PendingEntry{NewAsyncEntry(from, marker(from))}, true)
		from++
	}
	return from
}

// Two segments never share a key, and no nonce repeats under a key, across
// recycled segment files, a rollback after a failed sync, a crash and a
// reopen: the keys and nonces the engine used are all recorded.
func TestSegmentKeysAcrossRollbackCrashAndReopen(t *testing.T) {
	log := newKeyLog(t, 1, map[uint32][]byte{1: testKey(1)})
	mem := memfs.New(4096)
	efs := errorfs.New(mem, nil)
	cfg := DefaultConfig("keys")
	cfg.FS = efs
	cfg.Cipher = log
	cfg.SegmentSize = 16 << 10 // three batches a segment
	cfg.SegmentsToRetain = 2   // retired segments' files are recycled
	c := openT(t, cfg)
	next := writeN(t, c, 1, 30)

	// A failed sync: the batch is rolled back, its segment sealed, and the
	// writes go on in a fresh one.
	efs.SetInjector(errorfs.Fault{}.On(segWrites(errorfs.OpWriteSync)))
	if _, err := c.Flush([]*PendingEntry{NewAsyncEntry(next, marker(next))}, true); err == nil {
		t.Fatal("the injected sync failure did not fail the batch")
	}
	efs.SetInjector(nil)
	next = writeN(t, c, next, 10)
	lastBeforeCrash := c.CurrentSegmentID()

	// A crash: the next process writes from what the disk kept.
	clone := mem.CrashClone(1)
	cc := cfg
	cc.FS = clone
	c2 := openT(t, cc)
	next = writeN(t, c2, next, 10)
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	c3 := openT(t, cc)
	writeN(t, c3, next, 10)
	if c3.CurrentSegmentID() <= lastBeforeCrash+3 {
		t.Fatalf("segment %d after the crash, %d before: too few segments to judge", c3.CurrentSegmentID(), lastBeforeCrash)
	}
	if recycled := c.Stats().SegmentsRecycled + c3.Stats().SegmentsRecycled; recycled == 0 {
		t.Fatal("no segment file was recycled")
	}
	log.mu.Lock()
	asked, sealed := len(log.asked), len(log.sealed)
	log.mu.Unlock()
	t.Logf("segments %d, keys asked %d, encryptions %d, recycled %d", c3.CurrentSegmentID(), asked, sealed, c.Stats().SegmentsRecycled+c3.Stats().SegmentsRecycled)
	log.check(t, int(c3.CurrentSegmentID())-1)
	replayAll(t, c3, 0) // and every segment still decrypts
}

// headerOf decodes the header of segment id in dir.
func headerOf(t *testing.T, dir string, id uint64) segment.Header {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, segment.Name(id)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := segment.DecodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Rotation: written under key 1, then under key 2, everything replays
// with both keys; with key 2 alone Open fails naming a segment of key 1,
// until no segment of key 1 is left.
func TestKeyRotation(t *testing.T) {
	k1, k2 := map[uint32][]byte{1: testKey(1)}, map[uint32][]byte{1: testKey(1), 2: testKey(2)}
	cfg := DefaultConfig(t.TempDir())
	cfg.Backend = BackendFallback
	cfg.SegmentSize = 16 << 10
	cfg.SegmentsToRetain = RetainAll
	cfg.Cipher = mustKeyring(t, 1, k1)
	c := openT(t, cfg)
	next := writeN(t, c, 1, 9)
	c.Close()
	last1 := c.CurrentSegmentID()

	cfg.Cipher = mustKeyring(t, 2, k2)
	c = openT(t, cfg)
	writeN(t, c, next, 9)
	c.Close()
	var want []replayed
	for l := LSN(1); l < next+9; l++ {
		want = append(want, replayed{l, string(marker(l))})
	}
	for _, id := range logIDs(t, cfg.Dir) {
		h := headerOf(t, cfg.Dir, id)
		if wantKey := uint32(map[bool]int{true: 1, false: 2}[id <= last1]); h.Version != segment.Version3 || !h.Encrypted() || h.KeyID != wantKey {
			t.Fatalf("segment %d: format %d, flags %x, key %d; want format 3, encrypted, key %d", id, h.Version, h.Flags, h.KeyID, wantKey)
		}
	}

	c = openT(t, cfg)
	if got := replayAll(t, c, 0); !slices.Equal(got, want) {
		t.Fatalf("with both keys replayed %d entries, want %d", len(got), len(want))
	}
	for _, l := range []LSN{1, next - 1, next + 8} {
		if b, err := c.Read(l, nil); err != nil || !bytes.Equal(b, marker(l)) {
			t.Fatalf("Read(%d): %q %v", l, b, err)
		}
	}
	c.Close()

	only2 := cfg
	only2.Cipher = mustKeyring(t, 2, map[uint32][]byte{2: testKey(2)})
	_, err := Open(only2)
	if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), fmt.Sprintf("segment %d is encrypted under key 1", last1)) {
		t.Fatalf("Open without key 1: %v; want ErrDecrypt naming segment %d and key 1", err, last1)
	}

	// Once the segments of key 1 are gone, key 2 alone opens the log.
	c = openT(t, cfg)
	if _, err := c.TruncateToLSN(next); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = openT(t, only2)
	if got := replayAll(t, c, 0); !slices.Equal(got, want[next-1:]) {
		t.Fatalf("after dropping key 1's segments replayed %v", got)
	}
}

// format1Key is the key testdata/format1-encrypted was written with.
func format1Key() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

// format1Entry is entry lsn of testdata/format1-encrypted.
func format1Entry(lsn LSN) string {
	return fmt.Sprintf("format-1 entry %03d %s", lsn, strings.Repeat("x", 900))
}

// copyFixture copies testdata/name into a fresh directory.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", name)
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testdata/format1-encrypted was written before segments had keys of
// their own (format 1: every batch under NewAESGCM's key itself): 22
// entries, two a batch, in segments 1-3 (sealed) and 4 (left open, as by a
// crash). It opens with that key as key 0, in a ring of one or beside a
// newer key, and new segments go in format 2.
func TestFormat1EncryptedDirectoryOpens(t *testing.T) {
	var want []replayed
	for l := LSN(1); l <= 22; l++ {
		want = append(want, replayed{l, format1Entry(l)})
	}
	for name, ciph := range map[string]Cipher{
		"NewAESGCM":        mustCipher0(t, format1Key()),
		"rotated to key 5": mustKeyring(t, 5, map[uint32][]byte{0: format1Key(), 5: testKey(5)}),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig(copyFixture(t, "format1-encrypted"))
			cfg.Backend = BackendFallback
			cfg.Cipher = ciph
			c := openT(t, cfg)
			if h := headerOf(t, cfg.Dir, 4); h.Version != segment.Version1 || !h.Encrypted() {
				t.Fatalf("fixture segment 4: format %d flags %x", h.Version, h.Flags)
			}
			if got := replayAll(t, c, 0); !slices.Equal(got, want) {
				t.Fatalf("replayed %d entries, want %d: %v", len(got), len(want), got)
			}
			if b, err := c.Read(20, nil); err != nil || string(b) != format1Entry(20) {
				t.Fatalf("Read(20): %v", err)
			}
			mustFlush(t, c, []*PendingEntry{NewAsyncEntry(23, marker(23))}, true)
			h := headerOf(t, cfg.Dir, c.CurrentSegmentID())
			if h.Version != segment.Version3 || h.KeyID != ciph.KeyID() {
				t.Fatalf("new segment: format %d key %d", h.Version, h.KeyID)
			}
			c.Close()
			c = openT(t, cfg)
			if got := replayAll(t, c, 0); len(got) != 23 || !slices.Equal(got[:22], want) {
				t.Fatalf("after reopen replayed %d entries", len(got))
			}
		})
	}
	cfg := DefaultConfig(copyFixture(t, "format1-encrypted"))
	cfg.Backend = BackendFallback
	cfg.Cipher = mustKeyring(t, 1, map[uint32][]byte{1: format1Key()})
	if _, err := Open(cfg); !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "segment 4 is encrypted under key 0 (format 1") {
		t.Fatalf("Open of format 1 segments without a key 0: %v", err)
	}
}

func mustCipher0(t *testing.T, key []byte) Cipher {
	t.Helper()
	c, err := NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
