package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/dwal-project/dwal/engine/align"
	"github.com/dwal-project/dwal/engine/vfs"
)

// The segment header. NB: never change these.
//
// NB: every format keeps format 1's first 44 bytes, their CRC included (a
// later format appends its fields, and a CRC of its own, after them), so a
// build tells a header of a newer format (ErrUnsupportedFormat: Open
// refuses the directory untouched) from a bad one (which Open may cut off
// as a torn segment).
const (
	Magic         = "DWALSEG\x00" // first 8 bytes of every segment
	Version1      = 1             // format 1: no key fields, entries in layout 1
	Version2      = 2             // format 2: format 1, then a key ID and a key salt; entries in layout 1
	Version3      = 3             // format 3: format 2's header, entries in layout 2 (each names its log); written by this build
	Version       = Version3      // the newest segment format this build reads
	HeaderLen     = 44            // a format 1 header, CRC included (the part every format shares)
	HeaderLen2    = 68            // a format 2 header, both CRCs included
	KeySaltLen    = 16            // random bytes of a format 2 header its key is derived with
	KeyInfoLen    = 4 + 8 + 8 + KeySaltLen
	FlagEncrypted = 1 << 0 // header flag: entry bytes are encrypted by a cipher
	// FlagOneLog (format 3): every entry of the segment is log 0's, so its
	// .meta says where log 0's entries are without its index (a log's
	// segment, written by an engine.Coordinator); a segment of a set of logs
	// has it clear. Formats 1 and 2 hold log 0 only, flag or not.
	FlagOneLog = 1 << 1
)

// Castagnoli is the CRC32C table of every checksum in the format.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the first aligned block of a segment.
type Header struct {
	Version uint16
	Flags   uint16
	Align   uint32 // the alignment batches are written at
	ID      uint64
	Salt    uint64 // random per segment: seeds every batch CRC
	Created int64  // unix nanoseconds, informational
	// Format 2 only (zero in format 1):
	KeyID   uint32           // the master key an encrypted segment's key is derived from
	KeySalt [KeySaltLen]byte // random per header written: no two segments derive the same key
}

// Encrypted reports whether the segment's entries are encrypted.
func (h *Header) Encrypted() bool { return h.Flags&FlagEncrypted != 0 }

// OneLog reports whether every entry of the segment is log 0's.
func (h *Header) OneLog() bool { return h.Version < Version3 || h.Flags&FlagOneLog != 0 }

// Layout is the segment's entry layout.
func (h *Header) Layout() Layout {
	if h.Version >= Version3 {
		return Layout2
	}
	return Layout1
}

// KeyInfo returns what the key of an encrypted segment is derived from,
// with its master key: the master key's ID, the segment's ID and salt and
// the key salt (KeyInfoLen bytes, little endian). It is nil for a format 1
// header, which has no key of its own: its batches were encrypted under a
// master key itself.
func (h *Header) KeyInfo() []byte {
	if h.Version < Version2 {
		return nil
	}
	b := make([]byte, KeyInfoLen)
	binary.LittleEndian.PutUint32(b[0:], h.KeyID)
	binary.LittleEndian.PutUint64(b[4:], h.ID)
	binary.LittleEndian.PutUint64(b[12:], h.Salt)
	copy(b[20:], h.KeySalt[:])
	return b
}

// Encode writes h into b[:HeaderLen2] (zeroing it first) in h's format.
func (h *Header) Encode(b []byte) {
	clear(b[:HeaderLen2])
	copy(b[0:8], Magic)
	binary.LittleEndian.PutUint16(b[8:], h.Version)
	binary.LittleEndian.PutUint16(b[10:], h.Flags)
	binary.LittleEndian.PutUint32(b[12:], h.Align)
	binary.LittleEndian.PutUint64(b[16:], h.ID)
	binary.LittleEndian.PutUint64(b[24:], h.Salt)
	binary.LittleEndian.PutUint64(b[32:], uint64(h.Created))
	binary.LittleEndian.PutUint32(b[40:], crc32.Checksum(b[:40], Castagnoli))
	if h.Version >= Version2 {
		binary.LittleEndian.PutUint32(b[44:], h.KeyID)
		copy(b[48:64], h.KeySalt[:])
		binary.LittleEndian.PutUint32(b[64:], crc32.Checksum(b[:64], Castagnoli))
	}
}

// DecodeHeader parses and checks a header block: ErrBadHeader when it is
// not one, ErrUnsupportedFormat when its first CRC holds but its version is
// newer than Version.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), HeaderLen)
	}
	if string(b[0:8]) != Magic {
		return h, fmt.Errorf("%w: bad magic", ErrBadHeader)
	}
	if got, want := binary.LittleEndian.Uint32(b[40:]), crc32.Checksum(b[:40], Castagnoli); got != want {
		return h, fmt.Errorf("%w: crc %08x, want %08x", ErrBadHeader, got, want)
	}
	h.Version = binary.LittleEndian.Uint16(b[8:])
	h.Flags = binary.LittleEndian.Uint16(b[10:])
	h.Align = binary.LittleEndian.Uint32(b[12:])
	h.ID = binary.LittleEndian.Uint64(b[16:])
	h.Salt = binary.LittleEndian.Uint64(b[24:])
	h.Created = int64(binary.LittleEndian.Uint64(b[32:]))
	if h.Version > Version || h.Version == 0 {
		return h, fmt.Errorf("%w: segment format version %d, this build reads up to %d", ErrUnsupportedFormat, h.Version, Version)
	}
	if h.Version >= Version2 {
		if len(b) < HeaderLen2 {
			return h, fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), HeaderLen2)
		}
		if got, want := binary.LittleEndian.Uint32(b[64:]), crc32.Checksum(b[:64], Castagnoli); got != want {
			return h, fmt.Errorf("%w: key fields' crc %08x, want %08x", ErrBadHeader, got, want)
		}
		h.KeyID = binary.LittleEndian.Uint32(b[44:])
		copy(h.KeySalt[:], b[48:64])
	}
	if h.Align < 512 || h.Align&(h.Align-1) != 0 || h.Align > 1<<20 {
		return h, fmt.Errorf("%w: alignment %d", ErrBadHeader, h.Align)
	}
	return h, nil
}

// ReadHeader reads and checks the header block of f, read at alignment a.
func ReadHeader(f vfs.File, a int) (Header, error) {
	b := align.Alloc(a, a)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Header{}, err
	}
	return DecodeHeader(b[:n])
}
