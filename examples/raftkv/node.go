package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/dwal-project/dwal/raftstore"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// config is what a node is started with (the flags).
type config struct {
	id       raft.ServerID
	dir      string
	raftAddr string
	httpAddr string
	peers    peers

	heartbeat     time.Duration // raft's heartbeat and election timeouts; the leader lease is half
	rpcTimeout    time.Duration // I/O deadline of one raft RPC
	snapThreshold uint64        // raft snapshots once this many entries are past the last one
	snapInterval  time.Duration
	trailingLogs  uint64 // entries kept behind a snapshot for followers a little behind
	segmentSize   int64  // of the dwal log's segments
	logLevel      string
	// staleReads serves GET from this node's state machine on any node,
	// unconfirmed: fast and not linearizable (the Jepsen test's check of
	// itself: it must find the stale reads).
	staleReads bool
}

// node is one running member: its log store, raft, and its state machine.
type node struct {
	cfg   config
	store *raftstore.Store
	fsm   *kvFSM
	trans *raft.NetworkTransport
	r     *raft.Raft

	// readyTerm is the term in which this node, as leader, applied a
	// barrier: from then on its state machine holds every entry committed
	// before its term (linearizable reads need that; see read).
	readyTerm atomic.Uint64
}

// startNode opens the node's directory (DIR/log: the dwal raft log and
// stable store; DIR/snapshots: raft's snapshots), starts raft over TCP,
// and bootstraps the cluster from --peers when the store holds nothing.
func startNode(cfg config, logger hclog.Logger, slogger *slog.Logger) (*node, error) {
	n := &node{cfg: cfg, fsm: newFSM()}
	var err error
	if n.store, err = raftstore.Open(filepath.Join(cfg.dir, "log"),
		raftstore.WithLogger(slogger), raftstore.WithSegmentSize(cfg.segmentSize)); err != nil {
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.dir, "snapshots"), 2, logger.Named("snapshots"))
	if err != nil {
		n.store.Close()
		return nil, fmt.Errorf("raftkv: snapshot store: %w", err)
	}
	advertise, err := net.ResolveTCPAddr("tcp", cfg.raftAddr)
	if err != nil {
		n.store.Close()
		return nil, fmt.Errorf("raftkv: --raft-addr: %w", err)
	}
	n.trans, err = raft.NewTCPTransportWithConfig(cfg.raftAddr, advertise, &raft.NetworkTransportConfig{
		ServerAddressProvider: cfg.peers,
		Logger:                logger.Named("transport"),
		MaxPool:               3,
		Timeout:               cfg.rpcTimeout,
	})
	if err != nil {
		n.store.Close()
		return nil, fmt.Errorf("raftkv: raft transport on %s: %w", cfg.raftAddr, err)
	}
	existing, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		n.close()
		return nil, fmt.Errorf("raftkv: read the store: %w", err)
	}
	if n.r, err = raft.NewRaft(raftConfig(cfg, logger), n.fsm, n.store, n.store, snaps, n.trans); err != nil {
		n.close()
		return nil, fmt.Errorf("raftkv: start raft: %w", err)
	}
	if !existing {
		err := n.r.BootstrapCluster(cfg.peers.configuration()).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.close()
			return nil, fmt.Errorf("raftkv: bootstrap: %w", err)
		}
		logger.Info("bootstrapped the cluster", "servers", len(cfg.peers))
	}
	return n, nil
}

func raftConfig(cfg config, logger hclog.Logger) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = cfg.id
	c.Logger = logger.Named("raft")
	c.HeartbeatTimeout = cfg.heartbeat
	c.ElectionTimeout = cfg.heartbeat
	c.LeaderLeaseTimeout = cfg.heartbeat / 2
	c.SnapshotThreshold = cfg.snapThreshold
	c.SnapshotInterval = cfg.snapInterval
	c.TrailingLogs = cfg.trailingLogs
	return c
}

// close stops raft and closes the transport and the store.
func (n *node) close() error {
	var errs []error
	if n.r != nil {
		errs = append(errs, n.r.Shutdown().Error())
	}
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	errs = append(errs, n.store.Close())
	return errors.Join(errs...)
}

// Errors of the request paths, each mapped to an HTTP status.
var (
	errNotLeader = errors.New("raftkv: not the leader")
	errNoLeader  = errors.New("raftkv: no leader")
	// errUnknown: a write may or may not be committed (leadership lost
	// while it was in flight, or the request gave up waiting).
	errUnknown = errors.New("raftkv: outcome unknown")
)

// leader returns the leader's HTTP address as this node knows it.
func (n *node) leader() (string, error) {
	_, id := n.r.LeaderWithID()
	if id == "" {
		return "", errNoLeader
	}
	p, ok := n.cfg.peers.find(id)
	if !ok {
		return "", fmt.Errorf("%w: the leader %s is not in --peers", errNoLeader, id)
	}
	return p.HTTP, nil
}

// put replicates key=val and returns once raft committed it and this
// node applied it. errNotLeader means nothing was written; errUnknown
// that it may have been.
func (n *node) put(key string, val []byte, timeout time.Duration) error {
	if n.r.State() != raft.Leader {
		return errNotLeader
	}
	f := n.r.Apply(encodePut(key, val), timeout)
	err := f.Error()
	switch {
	case err == nil:
		if rerr, ok := f.Response().(error); ok {
			return rerr
		}
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout):
		return errNotLeader // never appended
	}
	return fmt.Errorf("%w: %w", errUnknown, err)
}

// read makes a linearizable read possible on this node, or says why not:
// once it returns nil, the state machine holds every write acknowledged
// before read was called. The leader applies a barrier once per term
// (its state machine then holds what earlier leaders committed; what it
// commits itself it applies before acknowledging it) and confirms its
// leadership with a quorum (VerifyLeader) on every read. The term is
// checked after VerifyLeader: a node that lost and won leadership again
// in between must apply a barrier of its new term first.
func (n *node) read(timeout time.Duration) error {
	if n.cfg.staleReads {
		return nil
	}
	term := n.r.CurrentTerm()
	if n.r.State() != raft.Leader {
		return errNotLeader
	}
	if n.readyTerm.Load() != term {
		if err := n.r.Barrier(timeout).Error(); err != nil {
			return n.readErr(err)
		}
		n.readyTerm.Store(term) // the barrier ran in this term or a later one
	}
	if err := n.r.VerifyLeader().Error(); err != nil {
		return n.readErr(err)
	}
	if n.r.CurrentTerm() != term {
		return fmt.Errorf("%w: the term changed during the read", errNotLeader)
	}
	return nil
}

func (n *node) readErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrEnqueueTimeout) {
		return fmt.Errorf("%w: %w", errNotLeader, err)
	}
	return err
}

// status is GET /status.
type status struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	LeaderHTTP   string `json:"leader_http,omitempty"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	FirstLog     uint64 `json:"first_log_index"` // the dwal log's bounds (0: empty)
	LastLog      uint64 `json:"last_log_index"`
	Keys         int    `json:"keys"`
	PID          int    `json:"pid"`
}

func (n *node) status() status {
	_, id := n.r.LeaderWithID()
	st := status{
		ID: string(n.cfg.id), State: n.r.State().String(), Leader: string(id),
		Term: n.r.CurrentTerm(), LastIndex: n.r.LastIndex(), CommitIndex: n.r.CommitIndex(),
		AppliedIndex: n.r.AppliedIndex(), Keys: n.fsm.len(), PID: os.Getpid(),
	}
	st.LeaderHTTP, _ = n.leader()
	st.FirstLog, _ = n.store.FirstIndex()
	st.LastLog, _ = n.store.LastIndex()
	return st
}
