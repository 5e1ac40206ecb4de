package engine

import (
	"fmt"

	"github.com/dwal-project/dwal/engine/internal/segment"
)

// One batch's way through the write pipeline (pipeline.go): measured,
// reserved, encoded into a pooled aligned buffer outside any lock, then
// written and settled. Its entries are data entries of any logs and their
// records (segment.Entry), in layout 2, the layout of every segment this
// build writes.

// writeBatch writes n entries (got through at) as one batch and waits for
// its outcome.
func (c *Coordinator) writeBatch(n int, at func(int) segment.Entry, sync bool) (FlushStats, error) {
	f, st, err := c.begin(n, at, sync)
	if err != nil {
		return st, err
	}
	return c.finish(f, st)
}

// begin checks and reserves a batch and encodes it. The returned flight
// must be passed to finish.
func (c *Coordinator) begin(n int, at func(int) segment.Entry, sync bool) (*flight, FlushStats, error) {
	var st FlushStats
	sz, err := c.measure(n, at, &st)
	if err != nil {
		return nil, st, err
	}
	f, err := c.reserve(n, sz, sync, &st)
	if err != nil {
		return nil, st, err
	}
	c.encode(f, at, sz)
	return f, st, nil
}

// batchSize is what a batch of entries takes.
type batchSize struct {
	plain   int // bytes of the encoded entries
	payload int // bytes after the header: plain, plus the cipher's overhead
	span    int // aligned bytes of the whole batch
}

// measure checks the entries against MaxEntrySize and the batch limit and
// sizes the batch; it counts their data bytes into st.
func (c *Coordinator) measure(n int, at func(int) segment.Entry, st *FlushStats) (batchSize, error) {
	var sz batchSize
	for i := range n {
		e := at(i)
		if len(e.Data) > c.cfg.MaxEntrySize {
			return sz, fmt.Errorf("%w: entry %d is %d bytes, limit %d", ErrEntryTooLarge, i, len(e.Data), c.cfg.MaxEntrySize)
		}
		sz.plain += segment.EntryHeaderLen2 + len(e.Data)
		if e.Kind == segment.KindData {
			st.BytesWritten += len(e.Data)
		}
	}
	sz.payload = sz.plain
	if c.cfg.Cipher != nil {
		sz.payload += c.cfg.Cipher.Overhead()
	}
	if sz.payload > segment.MaxBatchPayload {
		return sz, fmt.Errorf("%w: batch of %d bytes exceeds the %d-byte batch limit", ErrEntryTooLarge, sz.payload, segment.MaxBatchPayload)
	}
	sz.span = segment.BatchSpan(sz.payload, c.align)
	return sz, nil
}

// encode writes the reserved batch f into a pooled buffer, outside mu:
// header, entries (encrypted in an encrypted segment), zeros to its span;
// and sums its entries up by log for the index (f.logs, f.recs).
func (c *Coordinator) encode(f *flight, at func(int) segment.Entry, sz batchSize) {
	a := f.a
	f.buf = c.pool.Get(sz.span)
	buf := *f.buf
	h := segment.BatchHeader{Length: uint32(sz.payload), Count: uint32(f.n), Seq: f.seq, Salt: a.salt}
	var plainBuf *[]byte
	p := segment.BatchHeaderLen
	if a.encrypter != nil {
		// Encode the entries into a scratch buffer, then encrypt them into
		// place after the header.
		plainBuf = c.pool.Get(sz.plain)
		buf, p = *plainBuf, 0
	}
	f.logs.Reset()
	f.recs = f.recs[:0]
	var used int
	h.MinLSN, h.MaxLSN, used = segment.EncodeEntries(buf[p:], segment.Layout2, f.n, func(i int) segment.Entry {
		e := at(i)
		if e.Kind == segment.KindData {
			f.logs.Add(e)
		} else {
			f.recs = append(f.recs, e)
		}
		return e
	})
	p += used
	if a.encrypter != nil {
		c.cacheBatch(f, buf[:p])
	} else {
		c.cacheBatch(f, buf[segment.BatchHeaderLen:p])
	}
	if a.encrypter != nil {
		out, err := a.encrypter.Encrypt((*f.buf)[segment.BatchHeaderLen:segment.BatchHeaderLen], buf[:p], segment.BatchAD(f.ad[:], a.id, a.salt, &h))
		c.pool.Put(plainBuf)
		buf = *f.buf
		if err == nil && len(out) != sz.payload-sz.plain+p {
			err = fmt.Errorf("cipher %s encrypted %d bytes into %d, want %d", c.cfg.Cipher.Name(), p, len(out), sz.payload)
		}
		if err != nil {
			// Nothing was written: fail the batch through the normal path,
			// which cuts nothing (no byte reached the file at f.off).
			f.err = fmt.Errorf("dwal: encrypt batch: %w", err)
		}
		p = segment.BatchHeaderLen + sz.payload
	}
	clear(buf[p:sz.span])
	segment.EncodeBatchHeader(buf, &h)
	f.minLSN, f.maxLSN = LSN(h.MinLSN), LSN(h.MaxLSN)
}
