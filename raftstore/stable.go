package raftstore

import (
	"encoding/binary"
	"fmt"
	"iter"
	"maps"
	"slices"
)

// The stable store: raft's CurrentTerm, LastVoteTerm and LastVoteCand,
// and whatever else a caller keeps there, in the log's user record. Each
// Set rewrites the whole (small) record once, atomically and durably.

// Set stores val under key, durably on return (raft relies on the vote
// and term being stable before it answers: raft.go, persistVote and
// setCurrentTerm). Keys and values are any bytes.
func (s *Store) Set(key, val []byte) error {
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	if err := s.failed(); err != nil {
		return err
	}
	next := maps.Clone(s.kv)
	next[string(key)] = slices.Clone(val)
	if err := s.c.SetUserRecord(encodeKV(next)); err != nil {
		return fmt.Errorf("raftstore: set %q: %w", key, err)
	}
	s.kv = next
	return nil
}

// Get returns the value of key, or nil and a nil error when key was never
// set: raft's StableStore contract (stable.go: "an empty byte slice if
// key was not found"). Raft also tolerates an error whose text is "not
// found" (api.go, NewRaft; raft.go, requestVote), which raft-boltdb
// returns; this store does not need it.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	if err := s.failed(); err != nil {
		return nil, err
	}
	v, ok := s.kv[string(key)]
	if !ok {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

// SetUint64 stores val under key (8 bytes, big endian), durably.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value of key, 0 and a nil error when key was never
// set (stable.go: "0 if key was not found"). A value that is not 8 bytes
// (set with Set) is an error.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftstore: value of %q is %d bytes, not a uint64", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func mapKeys(m map[string][]byte) iter.Seq[string] { return maps.Keys(m) }
