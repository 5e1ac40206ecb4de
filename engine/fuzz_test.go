package engine

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"unsafe"

	"github.com/dwal-project/dwal/engine/internal/segment"
	"github.com/dwal-project/dwal/engine/vfs/memfs"
)

// Fuzz targets for the parts of the format that read untrusted bytes.
// scripts/fuzz.sh runs each for a while; `go test` runs their seed corpus
// (engine/testdata/fuzz/<name>/ and the f.Add calls) as ordinary tests.

// FuzzDecodeBatch feeds arbitrary bytes to the batch decoder, as one batch
// of a segment with the given salt, at the given sequence number, the way
// segment.Scan does: DecodeBatchHeader, then (when the length fits the
// bytes) CheckBatch and WalkBatch. Nothing may panic, every entry walked
// lies inside the batch's bytes, and a batch that passes CheckBatch walks
// exactly count entries with LSNs in the header's range. WalkBatch also runs
// on batches whose CRC fails: it must be safe on any lengths (a hostile
// file can carry a valid CRC).
func FuzzDecodeBatch(f *testing.F) {
	const salt = 0x1122334455667788
	for _, entries := range [][][]byte{nil, {{}}, {[]byte("a")}, {[]byte("hello"), nil, make([]byte, 5000)}} {
		b := fuzzBatch(salt, 1, 10, entries, segment.Layout1)
		f.Add(b, uint64(salt), uint64(1))
		f.Add(fuzzBatch(salt|1, 1, 10, entries, segment.Layout2), uint64(salt|1), uint64(1))
		f.Add(b, uint64(salt), uint64(2))
		f.Add(b[:len(b)/2], uint64(salt), uint64(1))
	}
	f.Add(make([]byte, segment.BatchHeaderLen), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, salt, seq uint64) {
		if len(data) < segment.BatchHeaderLen {
			return // the scanner never decodes fewer bytes (it ends the log)
		}
		h, why := segment.DecodeBatchHeader(data[:segment.BatchHeaderLen], salt, seq)
		if why != segment.OK {
			return
		}
		h.Layout = fuzzLayout(salt)
		hl := uintptr(h.Layout.HeaderLen())
		if h.Salt != salt || h.Seq != seq || h.Length > segment.MaxBatchPayload {
			t.Fatalf("header accepted with salt %x seq %d length %d (want salt %x seq %d)", h.Salt, h.Seq, h.Length, salt, seq)
		}
		if int64(segment.BatchHeaderLen)+int64(h.Length) > int64(len(data)) {
			return // segment.Scan ends the log here (segment.BadLength)
		}
		body := data[segment.BatchHeaderLen : segment.BatchHeaderLen+int(h.Length)]
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(body)))
		hi := lo + uintptr(len(body))
		var n uint32
		walk := func(e segment.Entry) error {
			n++
			if b := e.Data; len(b) > 0 {
				p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
				if p < lo+hl || p+uintptr(len(b)) > hi {
					t.Fatalf("entry %d (LSN %d, %d bytes) lies outside the batch's bytes", n, e.LSN, len(b))
				}
			}
			if uint64(n) > uint64(len(body))/uint64(hl) {
				t.Fatalf("walked %d entries out of %d bytes", n, len(body))
			}
			return nil
		}
		rawWhy, err := segment.WalkBatch(data, &h, walk)
		if err != nil {
			t.Fatalf("WalkBatch returned fn's error %v, fn returned none", err)
		}
		if rawWhy == segment.OK && n != h.Count {
			t.Fatalf("WalkBatch accepted %d entries, header says %d", n, h.Count)
		}
		checkWhy := segment.CheckBatch(data, &h)
		if checkWhy != segment.OK {
			return
		}
		n = 0
		var lsns []uint64
		if why, err := segment.WalkBatch(data, &h, func(e segment.Entry) error {
			if e.Kind == segment.KindData {
				lsns = append(lsns, e.LSN)
			}
			return walk(e)
		}); why != segment.OK || err != nil {
			t.Fatalf("CheckBatch accepted a batch WalkBatch refuses: %q %v", why, err)
		}
		if n != h.Count {
			t.Fatalf("checked batch walks %d entries, header says %d", n, h.Count)
		}
		for _, l := range lsns {
			if l < h.MinLSN || l > h.MaxLSN {
				t.Fatalf("LSN %d outside the header's %d..%d", l, h.MinLSN, h.MaxLSN)
			}
		}
	})
}

// fuzzLayout is the entry layout FuzzDecodeBatch decodes a batch of salt
// in: layout 2 for an odd salt, so both layouts are fuzzed.
func fuzzLayout(salt uint64) segment.Layout {
	if salt&1 == 1 {
		return segment.Layout2
	}
	return segment.Layout1
}

// fuzzBatch encodes a batch of entries (LSNs first, first+1, ...; in
// layout 2 of log i%3) as the writer does: header, entries, zeros to the
// next 4096-byte block.
func fuzzBatch(salt, seq uint64, first LSN, entries [][]byte, l segment.Layout) []byte {
	payload := 0
	for _, e := range entries {
		payload += l.HeaderLen() + len(e)
	}
	b := make([]byte, segment.BatchSpan(payload, 4096))
	h := segment.BatchHeader{Length: uint32(payload), Count: uint32(len(entries)), Seq: seq, Salt: salt}
	h.MinLSN, h.MaxLSN, _ = segment.EncodeEntries(b[segment.BatchHeaderLen:], l, len(entries), func(i int) segment.Entry {
		e := segment.Entry{LSN: uint64(first) + uint64(i), Data: entries[i]}
		if l == segment.Layout2 {
			e.Log = uint64(i % 3)
		}
		return e
	})
	segment.EncodeBatchHeader(b, &h)
	return b
}

// fuzzSegment builds segment 1 from layout: each byte is one entry (LSN
// i+1, crashData bytes, byte*17 long), a new batch starting where the
// byte is a multiple of 3 (and at the first). It returns the segment's
// bytes, the entries written and the entry count at the end of each batch.
func fuzzSegment(layout []byte, prealloc bool) (seg []byte, written []replayed, ends []int) {
	const salt = 0x5eed5a17
	h := segment.Header{Version: segment.Version1, Align: 4096, ID: 1, Salt: salt, Created: 1} // plain segments are format 1
	seg = make([]byte, 4096)
	h.Encode(seg)
	var batch [][]byte
	seq := uint64(1)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		first := LSN(len(written) - len(batch) + 1)
		seg = append(seg, fuzzBatch(salt, seq, first, batch, segment.Layout1)...)
		seq++
		ends = append(ends, len(written))
		batch = nil
	}
	for i, b := range layout {
		if i >= 48 || len(seg) > 256<<10 {
			break
		}
		if i > 0 && b%3 == 0 {
			flush()
		}
		lsn := LSN(i + 1)
		d := crashData(lsn, int(b)*17)
		batch = append(batch, d)
		written = append(written, replayed{lsn, string(d)})
	}
	flush()
	if prealloc {
		seg = append(seg, make([]byte, 3*4096)...)
	}
	return seg, written, ends
}

// FuzzRecoverSegment writes a valid segment (header and batches built from
// the fuzz input), damages it as the input says (overwrites bytes at an
// offset, cuts it at a length, or replaces everything after the header),
// stores it as 000001.log in a memfs directory, optionally with a .meta
// that says what was written, and opens it. Open must not panic or hang.
// Without a .meta the segment is the last one, which recovery repairs, so
// Open and Replay must succeed; with one it is sealed, and a damaged
// sealed segment may fail either with ErrCorrupt. What replays is always a
// prefix of what was written, of whole batches, with the exact bytes; a
// second Open replays the same.
func FuzzRecoverSegment(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6}, []byte{0xff}, uint32(4096+60), uint8(0))
	f.Add([]byte{0, 3, 200, 7, 9, 255, 3, 1}, []byte{}, uint32(9000), uint8(1))
	f.Add([]byte{10, 20, 30}, []byte("DWB1"), uint32(8192), uint8(2))
	f.Add([]byte{100, 100, 100, 100}, []byte{0, 0, 0, 0, 0, 0, 0, 0}, uint32(4096), uint8(3))
	f.Add([]byte{5, 6, 7}, []byte{1}, uint32(4096+20), uint8(4))
	f.Add([]byte{5, 6, 9, 7}, []byte{}, uint32(12288), uint8(5|8))
	f.Fuzz(func(t *testing.T, layout, patch []byte, at uint32, mode uint8) {
		seg, written, ends := fuzzSegment(layout, mode&8 != 0)
		full := len(seg)
		switch mode & 3 {
		case 0: // overwrite bytes at an offset
			if len(seg) > 0 {
				off := int(at) % len(seg)
				copy(seg[off:], patch)
			}
		case 1: // cut at a length
			seg = seg[:int(at)%(len(seg)+1)]
		case 2: // both
			off := int(at) % len(seg)
			copy(seg[off:], patch)
			seg = seg[:max(off, int(at>>8)%(len(seg)+1))]
		case 3: // arbitrary bytes after the header block (or instead of it)
			keep := min(4096, int(at)%(len(seg)+1))
			seg = append(seg[:keep:keep], patch...)
		}
		damaged := len(seg) != full || mode&3 != 1 && len(patch) > 0
		mem := memfs.New(4096)
		if err := mem.WriteFile(segment.Name(1), seg); err != nil {
			t.Fatal(err)
		}
		withMeta := mode&4 != 0 && len(written) > 0
		if withMeta {
			m := SegmentMetadata{MinLSN: written[0].lsn, MaxLSN: written[len(written)-1].lsn, EntryCount: uint64(len(written))}
			b, _ := m.MarshalBinary()
			if err := mem.WriteFile(segment.MetaName(1), b); err != nil {
				t.Fatal(err)
			}
		}
		cfg := DefaultConfig("fuzz")
		cfg.FS = mem
		cfg.SegmentSize = 16 << 10
		var first []replayed
		for round := range 2 {
			c, err := Open(cfg)
			if err != nil {
				if !withMeta {
					t.Fatalf("Open of a damaged last segment failed: %v", err)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open: %v, want ErrCorrupt", err)
				}
				return
			}
			var got []replayed
			err = c.Replay(0, func(l LSN, b []byte) error {
				got = append(got, replayed{l, string(b)})
				return nil
			})
			c.Close()
			if len(got) > len(written) || !slices.Equal(got, written[:len(got)]) {
				t.Fatalf("replayed %d entries that are not a prefix of the %d written", len(got), len(written))
			}
			if len(got) > 0 && !slices.Contains(ends, len(got)) {
				t.Fatalf("replayed %d entries: not a whole number of batches (batch ends %v)", len(got), ends)
			}
			if err != nil {
				if !withMeta || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Replay: %v", err)
				}
			}
			if !damaged && err == nil && len(got) != len(written) {
				t.Fatalf("undamaged segment replayed %d of %d entries", len(got), len(written))
			}
			if round == 0 {
				first = got
			} else if !slices.Equal(got, first) {
				t.Fatalf("second Open replays %d entries, first %d", len(got), len(first))
			}
			if err != nil {
				return
			}
		}
	})
}

// FuzzDecodeHeader feeds arbitrary bytes to the segment header decoder, as
// the block at offset 0 of a segment. Nothing may panic; a header it
// accepts encodes back to the same bytes (the fields it checks are all it
// read), and one it refuses as newer than this build is told apart from a
// bad one by format 1's CRC alone.
func FuzzDecodeHeader(f *testing.F) {
	for _, h := range []segment.Header{
		{Version: segment.Version1, Align: 4096, ID: 1, Salt: 2, Created: 3},
		{Version: segment.Version1, Flags: segment.FlagEncrypted, Align: 512, ID: 9},
		{Version: segment.Version2, Flags: segment.FlagEncrypted, Align: 4096, ID: 7, Salt: 8, KeyID: 5, KeySalt: [16]byte{1, 2, 3}},
		{Version: segment.Version + 1, Align: 4096, ID: 1},
	} {
		b := make([]byte, segment.HeaderLen2)
		h.Encode(b)
		f.Add(b)
		f.Add(b[:segment.HeaderLen])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := segment.DecodeHeader(b)
		if errors.Is(err, segment.ErrUnsupportedFormat) && h.Version <= segment.Version && h.Version != 0 {
			t.Fatalf("format %d refused as unsupported", h.Version)
		}
		if err != nil {
			return
		}
		n := segment.HeaderLen
		if h.Version >= segment.Version2 {
			n = segment.HeaderLen2
		}
		again := make([]byte, segment.HeaderLen2)
		h.Encode(again)
		if !slices.Equal(again[:n], b[:n]) {
			t.Fatalf("decoded %+v from %x; it encodes as %x", h, b[:n], again[:n])
		}
	})
}

// FuzzDecodeIndex: a segment index file is bytes from disk, so decoding
// any bytes must not panic, and whatever decodes must be exactly what
// encoding it gives back (one form per index: nothing unchecked rides in
// it).
func FuzzDecodeIndex(f *testing.F) {
	h := &segment.Header{ID: 5, Salt: 77, Align: 4096}
	x := segment.NewIndex(h)
	for i := range int64(5) {
		x.Add(0, 4096*(1+2*i), 8192, uint64(10*i), uint64(10*i+3), 4)
		x.AddBatch()
	}
	f.Add(x.Encode())
	f.Add(segment.NewIndex(h).Encode())
	f.Add([]byte("DWALIDX\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := segment.DecodeIndex(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeIndex error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := x.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("decoded %d bytes, re-encoded %d other bytes", len(b), len(again))
		}
	})
}
