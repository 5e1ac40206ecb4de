package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustCipher(t *testing.T, b byte) Cipher {
	t.Helper()
	c, err := NewAESGCM(testKey(b))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewAESGCMKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewAESGCM(make([]byte, n)); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%d-byte key: %v", n, err)
		}
	}
}

// marker makes entry bytes easy to search for in the files.
func marker(lsn LSN) []byte {
	return []byte(fmt.Sprintf("SECRET-PLAINTEXT-%06d-xxxxxxxxxxxxxxxx", lsn))
}

func TestEncryptedRoundTripNoPlaintextOnDisk(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.Cipher = mustCipher(t, 1)
		cfg.SegmentSize = 16 << 10
		cfg.SegmentsToRetain = 100
		c := openT(t, cfg)
		var want []replayed
		for lsn := LSN(1); lsn <= 60; lsn++ {
			mustFlush(t, c, []*PendingEntry{NewAsyncEntry(lsn, marker(lsn))}, lsn%3 != 0)
			want = append(want, replayed{lsn, string(marker(lsn))})
		}
		if got := replayAll(t, c, 0); !slices.Equal(got, want) {
			t.Fatalf("replayed %d entries, want %d", len(got), len(want))
		}
		c.Close()
		c2 := openT(t, cfg)
		if got := replayAll(t, c2, 0); !slices.Equal(got, want) {
			t.Fatalf("after reopen replayed %d entries, want %d", len(got), len(want))
		}
		if !b.realDir {
			return
		}
		ents, _ := os.ReadDir(cfg.Dir)
		for _, e := range ents {
			data, _ := os.ReadFile(filepath.Join(cfg.Dir, e.Name()))
			if bytes.Contains(data, []byte("SECRET-PLAINTEXT")) {
				t.Fatalf("%s holds plaintext", e.Name())
			}
		}
	})
}

func TestEncryptedWrongOrMissingKey(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.Backend = BackendFallback
	cfg.Cipher = mustCipher(t, 1)
	c := openT(t, cfg)
	mustFlush(t, c, []*PendingEntry{NewAsyncEntry(1, marker(1))}, true)
	c.Close()
	for name, ciph := range map[string]Cipher{"wrong key": mustCipher(t, 2), "no key": nil} {
		cfg2 := cfg
		cfg2.Cipher = ciph
		c2, err := Open(cfg2)
		if err == nil {
			err = c2.Replay(0, func(LSN, []byte) error { t.Fatalf("%s: an entry was replayed", name); return nil })
			c2.Close()
		}
		if !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%s: %v, want ErrDecrypt", name, err)
		}
	}
}

// An encrypted batch copied elsewhere, with its CRC, salt and sequence number
// fixed up as an attacker would, fails to open: the tag covers the segment
// and the batch's place. A flipped ciphertext bit likewise.
func TestEncryptedBatchMovedOrAltered(t *testing.T) {
	for _, tc := range []string{"to another offset", "to another segment", "flipped bit"} {
		t.Run(tc, func(t *testing.T) {
			cfg := DefaultConfig(t.TempDir())
			cfg.Backend = BackendFallback
			cfg.Cipher = mustCipher(t, 1)
			cfg.SegmentSize = 1 // one batch per segment
			cfg.SegmentsToRetain = 100
			writeLog(t, cfg, 2, 1) // segments 1 and 2
			src := filepath.Join(cfg.Dir, segment.Name(1))
			dst := src
			dstOff := int64(4096)
			switch tc {
			case "to another offset":
				dstOff = 8192 // where a second batch of segment 1 would go
			case "to another segment":
				dst = filepath.Join(cfg.Dir, segment.Name(2))
			}
			data, _ := os.ReadFile(src)
			batch := append([]byte(nil), data[4096:8192]...)
			target, _ := os.ReadFile(dst)
			th, _ := segment.DecodeHeader(target)
			if tc == "flipped bit" {
				batch[segment.BatchHeaderLen+20] ^= 1
			}
			seq := uint64(1)
			if dstOff == 8192 {
				seq = 2
			}
			binary.LittleEndian.PutUint64(batch[16:], seq)
			binary.LittleEndian.PutUint64(batch[40:], th.Salt)
			l := binary.LittleEndian.Uint32(batch[8:])
			binary.LittleEndian.PutUint32(batch[4:], crc32.Update(segment.SeedCRC(th.Salt), segment.Castagnoli, batch[8:segment.BatchHeaderLen+int(l)]))
			if int64(len(target)) < dstOff+4096 {
				target = append(target, make([]byte, dstOff+4096-int64(len(target)))...)
			}
			copy(target[dstOff:], batch)
			os.WriteFile(dst, target, 0o600)
			os.Remove(filepath.Join(cfg.Dir, segment.MetaName(1))) // let recovery rescan
			os.Remove(filepath.Join(cfg.Dir, segment.MetaName(2)))
			c, err := Open(cfg)
			if err == nil {
				err = c.Replay(0, func(LSN, []byte) error { return nil })
				c.Close()
			}
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("%v, want ErrDecrypt", err)
			}
		})
	}
}

func TestMixedPlaintextAndEncryptedDirectory(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.Backend = BackendFallback
	cfg.SegmentSize = 1
	cfg.SegmentsToRetain = 100
	plain := writeLog(t, cfg, 2, 2)
	cfg.Cipher = mustCipher(t, 7)
	c := openT(t, cfg)
	mustFlush(t, c, []*PendingEntry{NewAsyncEntry(5, marker(5)), NewAsyncEntry(6, marker(6))}, true)
	want := append(slices.Clone(plain), replayed{5, string(marker(5))}, replayed{6, string(marker(6))})
	if got := replayAll(t, c, 0); !slices.Equal(got, want) {
		t.Fatalf("mixed replay %v", got)
	}
	// The plaintext segments still read without the key; the encrypted one
	// does not.
	c.Close()
	cfg.Cipher = nil
	c2, err := Open(cfg)
	if !errors.Is(err, ErrDecrypt) {
		if err == nil {
			c2.Close()
		}
		t.Fatalf("Open without the key of an encrypted segment: %v", err)
	}
}
