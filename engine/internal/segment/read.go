package segment

import (
	"encoding/binary"
	"fmt"
)

// PlainBatch checks one batch read whole from its aligned offset (b holds
// at least its header and entries) against its segment's header h, and
// returns the batch in plain form: b itself for a plain segment, or, for
// an encrypted one, the header followed by the decrypted entries, appended to
// dst[:0]. The returned header's Length is the plain entries' length. A
// batch that does not continue the log at off gives a Problem (the segment
// no longer holds it: removed, recycled, cut); one whose CRC holds but
// whose entries do not decrypt or do not fill it gives an error wrapping ErrDecrypt
// or ErrCorrupt. The random reads of the engine's index use it; the
// sequential scan checks batches the same way.
func PlainBatch(b []byte, h *Header, off int64, open Decrypter, dst []byte) ([]byte, BatchHeader, Problem, error) {
	if len(b) < BatchHeaderLen {
		return nil, BatchHeader{}, BadLength, nil
	}
	bh, why := DecodeBatchHeader(b, h.Salt, binary.LittleEndian.Uint64(b[16:]))
	if why != OK {
		return nil, bh, why, nil
	}
	if BatchHeaderLen+int(bh.Length) > len(b) {
		return nil, bh, BadLength, nil
	}
	bh.Encrypted, bh.Layout = h.Encrypted(), h.Layout()
	if why := CheckBatch(b, &bh); why != OK {
		return nil, bh, why, nil
	}
	if !bh.Encrypted {
		return b[:BatchHeaderLen+int(bh.Length)], bh, OK, nil
	}
	if open == nil {
		return nil, bh, OK, fmt.Errorf("%w: segment %d is encrypted and no cipher is set (Config.Cipher)", ErrDecrypt, h.ID)
	}
	var ad [ADLen]byte
	plain := append(dst[:0], b[:BatchHeaderLen]...)
	plain, err := open.Decrypt(plain, b[BatchHeaderLen:BatchHeaderLen+int(bh.Length)], BatchAD(ad[:], h.ID, h.Salt, &bh))
	if err != nil {
		return nil, bh, OK, fmt.Errorf("%w: segment %d batch %d at offset %d, encrypted under %s: %w", ErrDecrypt, h.ID, bh.Seq, off, h.KeyName(), err)
	}
	ph := bh
	ph.Length, ph.Encrypted = uint32(len(plain)-BatchHeaderLen), false
	if why, _ := WalkBatch(plain, &ph, nil); why != OK {
		return nil, bh, OK, fmt.Errorf("%w: segment %d batch %d at offset %d: %s after decryption", ErrCorrupt, h.ID, bh.Seq, off, why)
	}
	return plain, ph, OK, nil
}

// FindEntry returns the bytes of the first data entry of log with LSN lsn
// in the entries body (a checked batch's bytes after its header, in layout
// l), aliasing body.
func FindEntry(body []byte, l Layout, log, lsn uint64) ([]byte, bool) {
	for {
		e, n, ok := decodeEntry(body, l)
		if !ok {
			return nil, false
		}
		if e.Kind == KindData && e.Log == log && e.LSN == lsn {
			return e.Data, true
		}
		body = body[n:]
	}
}

// EachEntry calls fn for every entry of the entries body (a checked
// batch's bytes after its header, in layout l); data aliases body.
func EachEntry(body []byte, l Layout, fn func(Entry)) {
	for {
		e, n, ok := decodeEntry(body, l)
		if !ok {
			return
		}
		fn(e)
		body = body[n:]
	}
}
