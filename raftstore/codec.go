package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// One raft.Log as a dwal entry (its LSN is the index):
//
//	| version u8 = 1 | type u8 | flags u8 | term uvarint | commit uvarint |
//	| appended-at varint (unix ns; when flag 1) | extensions length uvarint |
//	| extensions | data |
//
// flags: 1 AppendedAt is set, 2 Extensions is not nil, 4 Data is not nil.
// commit is the commit index raft staged before the StoreLogs that wrote
// the entry (CommitTrackingLogStore); 0 when none was.
const (
	logVersion  = 1
	flagAt      = 1
	flagExt     = 2
	flagData    = 4
	logFixedLen = 3
)

var errBadLog = errors.New("raftstore: not a log entry of this format")

// appendLog appends l's encoding to b.
func appendLog(b []byte, l *raft.Log, commit uint64) []byte {
	var flags byte
	if !l.AppendedAt.IsZero() {
		flags |= flagAt
	}
	if l.Extensions != nil {
		flags |= flagExt
	}
	if l.Data != nil {
		flags |= flagData
	}
	b = append(b, logVersion, byte(l.Type), flags)
	b = binary.AppendUvarint(b, l.Term)
	b = binary.AppendUvarint(b, commit)
	if flags&flagAt != 0 {
		b = binary.AppendVarint(b, l.AppendedAt.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return append(b, l.Data...)
}

// decodeLog fills l from entry b of index (Data and Extensions alias b)
// and returns the commit index written with it.
func decodeLog(b []byte, index uint64, l *raft.Log) (uint64, error) {
	if len(b) < logFixedLen || b[0] != logVersion {
		return 0, errBadLog
	}
	typ, flags := b[1], b[2]
	p := b[logFixedLen:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	term, ok1 := next()
	commit, ok2 := next()
	if !ok1 || !ok2 {
		return 0, errBadLog
	}
	var at time.Time
	if flags&flagAt != 0 {
		ns, n := binary.Varint(p)
		if n <= 0 {
			return 0, errBadLog
		}
		p = p[n:]
		at = time.Unix(0, ns)
	}
	extLen, ok := next()
	if !ok || extLen > uint64(len(p)) {
		return 0, errBadLog
	}
	*l = raft.Log{Index: index, Term: term, Type: raft.LogType(typ), AppendedAt: at}
	if flags&flagExt != 0 {
		l.Extensions = p[:extLen:extLen]
	}
	if flags&flagData != 0 {
		l.Data = p[extLen:]
	}
	return commit, nil
}

// The stable store is kept in the log's user record (engine.SetUserRecord:
// replaced atomically and durably): | version u8 = 1 | count uvarint |
// count × (key length uvarint, key, value length uvarint, value) |, keys
// sorted.
const kvVersion = 1

func encodeKV(kv map[string][]byte) []byte {
	b := []byte{kvVersion}
	b = binary.AppendUvarint(b, uint64(len(kv)))
	for _, k := range slices.Sorted(mapKeys(kv)) {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(kv[k])))
		b = append(b, kv[k]...)
	}
	return b
}

func decodeKV(b []byte) (map[string][]byte, error) {
	kv := map[string][]byte{}
	if len(b) == 0 {
		return kv, nil // never set
	}
	if b[0] != kvVersion {
		return nil, fmt.Errorf("raftstore: stable store record version %d, this build reads %d", b[0], kvVersion)
	}
	p := b[1:]
	next := func() ([]byte, bool) {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w) {
			return nil, false
		}
		v := p[w : w+int(n)]
		p = p[w+int(n):]
		return v, true
	}
	n, w := binary.Uvarint(p)
	if w <= 0 {
		return nil, errors.New("raftstore: stable store record is malformed")
	}
	p = p[w:]
	for range n {
		k, ok1 := next()
		v, ok2 := next()
		if !ok1 || !ok2 {
			return nil, errors.New("raftstore: stable store record is malformed")
		}
		kv[string(k)] = slices.Clone(v)
	}
	if len(p) != 0 {
		return nil, errors.New("raftstore: stable store record has trailing bytes")
	}
	return kv, nil
}
