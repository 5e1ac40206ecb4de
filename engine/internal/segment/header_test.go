package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

func TestHeaderFormats(t *testing.T) {
	v1 := Header{Version: Version1, Align: 4096, ID: 7, Salt: 0x1122334455667788, Created: 99}
	v2 := v1
	v2.Version, v2.Flags, v2.KeyID = Version2, FlagEncrypted, 3
	copy(v2.KeySalt[:], "0123456789abcdef")
	for _, h := range []Header{v1, v2} {
		b := make([]byte, 4096)
		h.Encode(b)
		got, err := DecodeHeader(b)
		if err != nil || got != h {
			t.Fatalf("format %d: decoded %+v, %v; want %+v", h.Version, got, err, h)
		}
		// NB: every format keeps format 1's CRC of the first 40 bytes, so
		// an older build sees a newer format, not a bad header.
		if binary.LittleEndian.Uint32(b[40:]) != crc32.Checksum(b[:40], Castagnoli) {
			t.Fatalf("format %d: no format 1 CRC at 40", h.Version)
		}
		end := HeaderLen
		if h.Version == Version2 {
			end = HeaderLen2
		}
		if !bytes.Equal(b[end:], make([]byte, len(b)-end)) {
			t.Fatalf("format %d: bytes written past %d", h.Version, end)
		}
	}
	if v1.KeyInfo() != nil {
		t.Fatal("a format 1 header has key info")
	}
	// A newer format whose first 44 bytes hold: unsupported, not bad.
	b := make([]byte, 4096)
	v2.Encode(b)
	binary.LittleEndian.PutUint16(b[8:], Version+1)
	binary.LittleEndian.PutUint32(b[40:], crc32.Checksum(b[:40], Castagnoli))
	if _, err := DecodeHeader(b); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("newer format: %v", err)
	}
	// Format 2's key fields are covered by their own CRC.
	for _, i := range []int{44, 50, 63, 64} {
		v2.Encode(b)
		b[i] ^= 1
		if _, err := DecodeHeader(b); !errors.Is(err, ErrBadHeader) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	v2.Encode(b)
	if _, err := DecodeHeader(b[:HeaderLen2-1]); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("short format 2 header: %v", err)
	}
}

// KeyInfo differs whenever the key ID, the segment's ID or salt, or the key
// salt does: no two segments derive one key.
func TestKeyInfoNamesTheSegment(t *testing.T) {
	base := Header{Version: Version2, Flags: FlagEncrypted, Align: 4096, ID: 1, Salt: 2, KeyID: 3}
	variants := []func(*Header){
		func(h *Header) {},
		func(h *Header) { h.KeyID++ },
		func(h *Header) { h.ID++ },
		func(h *Header) { h.Salt++ },
		func(h *Header) { h.KeySalt[15]++ },
	}
	seen := map[string]bool{}
	for i, v := range variants {
		h := base
		v(&h)
		info := h.KeyInfo()
		if len(info) != KeyInfoLen || seen[string(info)] {
			t.Fatalf("variant %d: info %x (%d bytes) seen before", i, info, len(info))
		}
		seen[string(info)] = true
	}
}
