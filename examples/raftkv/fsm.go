package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"

	"github.com/hashicorp/raft"
)

// A command is one PUT: | op u8 = 1 | key length uvarint | key | value |.
const opPut = 1

var errCommand = errors.New("raftkv: malformed command")

func encodePut(key string, val []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(key)+len(val))
	b = append(b, opPut)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return append(b, val...)
}

func decodePut(b []byte) (key string, val []byte, err error) {
	if len(b) < 2 || b[0] != opPut {
		return "", nil, errCommand
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || n > uint64(len(b)-1-w) {
		return "", nil, errCommand
	}
	k := b[1+w : 1+w+int(n)]
	return string(k), b[1+w+int(n):], nil
}

// kvFSM is the replicated state: a map from key to value. Apply runs on
// raft's FSM goroutine; get may run beside it.
type kvFSM struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newFSM() *kvFSM { return &kvFSM{m: map[string][]byte{}} }

// Apply applies one committed log entry. A malformed command is a bug of
// the writer: it is skipped and its error returned to the Apply caller
// (every node skips it alike).
func (f *kvFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	k, v, err := decodePut(l.Data)
	if err != nil {
		return fmt.Errorf("index %d: %w", l.Index, err)
	}
	f.mu.Lock()
	// NB: a copy: l.Data may alias a buffer of the log store's (GetLog
	// when raft applies entries read back from the log).
	f.m[k] = bytes.Clone(v)
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) get(key string) ([]byte, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, ok := f.m[key]
	return v, ok
}

func (f *kvFSM) len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.m)
}

// Snapshot copies the map (values are never mutated in place, so a
// shallow copy is a consistent one); Persist writes it while Apply goes on.
func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return kvSnapshot(maps.Clone(f.m)), nil
}

// Restore replaces the state with a snapshot's.
func (f *kvFSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	m, err := readSnapshot(bufio.NewReader(r))
	if err != nil {
		return fmt.Errorf("raftkv: restore: %w", err)
	}
	f.mu.Lock()
	f.m = m
	f.mu.Unlock()
	return nil
}

// kvSnapshot is | count uvarint | count × (key length uvarint, key,
// value length uvarint, value) |.
type kvSnapshot map[string][]byte

func (s kvSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(s)))
	for k, v := range s {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
		if len(b) > 64<<10 {
			if _, err := w.Write(b); err != nil {
				sink.Cancel()
				return err
			}
			b = b[:0]
		}
	}
	if _, err := w.Write(b); err != nil {
		sink.Cancel()
		return err
	}
	if err := w.Flush(); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (kvSnapshot) Release() {}

func readSnapshot(r *bufio.Reader) (map[string][]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	m := make(map[string][]byte, min(n, 1<<20))
	next := func() ([]byte, error) {
		l, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, err
		}
		if l > 1<<30 {
			return nil, errCommand
		}
		b := make([]byte, l)
		_, err = io.ReadFull(r, b)
		return b, err
	}
	for range n {
		k, err := next()
		if err != nil {
			return nil, err
		}
		v, err := next()
		if err != nil {
			return nil, err
		}
		m[string(k)] = v
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return nil, errors.New("trailing bytes after the snapshot")
	}
	return m, nil
}
