package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
)

// peer is one member of the cluster as this node sees it.
type peer struct {
	ID   raft.ServerID
	Raft raft.ServerAddress // where this node dials the member's raft transport
	HTTP string             // the member's HTTP address, for redirects
}

// peers is the --peers flag: every member, this node included, in the
// order given. It is also the transport's raft.ServerAddressProvider, so
// this node dials each member at the address its own flag gives, whatever
// address the replicated configuration holds (a proxy or a NAT address
// may stand in front of a member; the IDs must agree on every node).
type peers []peer

var errPeers = errors.New("raftkv: bad --peers")

// parsePeers reads ID=RAFTADDR=HTTPADDR,... .
func parsePeers(s string) (peers, error) {
	var ps peers
	for _, item := range strings.Split(s, ",") {
		parts := strings.Split(strings.TrimSpace(item), "=")
		if len(parts) != 3 || parts[0] == "" {
			return nil, fmt.Errorf("%w: %q is not ID=RAFTADDR=HTTPADDR", errPeers, item)
		}
		for _, a := range parts[1:] {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("%w: %q: %w", errPeers, item, err)
			}
		}
		p := peer{ID: raft.ServerID(parts[0]), Raft: raft.ServerAddress(parts[1]), HTTP: parts[2]}
		if _, ok := ps.find(p.ID); ok {
			return nil, fmt.Errorf("%w: %s appears twice", errPeers, p.ID)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (ps peers) find(id raft.ServerID) (peer, bool) {
	i := slices.IndexFunc(ps, func(p peer) bool { return p.ID == id })
	if i < 0 {
		return peer{}, false
	}
	return ps[i], true
}

// ServerAddr is raft.ServerAddressProvider: the raft address of id.
func (ps peers) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if p, ok := ps.find(id); ok {
		return p.Raft, nil
	}
	return "", fmt.Errorf("raftkv: no peer %q in --peers", id)
}

// configuration is the cluster a node with an empty store bootstraps:
// every peer a voter.
func (ps peers) configuration() raft.Configuration {
	var c raft.Configuration
	for _, p := range ps {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: p.ID, Address: p.Raft})
	}
	return c
}
