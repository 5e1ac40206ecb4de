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
const (
	Magic         = "DWALSEG\x00" // first 8 bytes of every segment
	Version       = 1             // the newest segment format this build reads and writes
	HeaderLen     = 44            // encoded header, CRC included
	FlagEncrypted = 1 << 0        // header flag: entry bytes are encrypted by a cipher
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
}

// Encrypted reports whether the segment's entries are encrypted.
func (h *Header) Encrypted() bool { return h.Flags&FlagEncrypted != 0 }

// Encode writes h into b[:HeaderLen] (zeroing it first).
func (h *Header) Encode(b []byte) {
	clear(b[:HeaderLen])
	copy(b[0:8], Magic)
	binary.LittleEndian.PutUint16(b[8:], h.Version)
	binary.LittleEndian.PutUint16(b[10:], h.Flags)
	binary.LittleEndian.PutUint32(b[12:], h.Align)
	binary.LittleEndian.PutUint64(b[16:], h.ID)
	binary.LittleEndian.PutUint64(b[24:], h.Salt)
	binary.LittleEndian.PutUint64(b[32:], uint64(h.Created))
	binary.LittleEndian.PutUint32(b[40:], crc32.Checksum(b[:40], Castagnoli))
}

// DecodeHeader parses and checks a header block: ErrBadHeader when it is
// not one, ErrUnsupportedFormat when its CRC holds but its version is newer
// than Version.
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
