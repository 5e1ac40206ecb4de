// Command raftkv is a replicated key-value service: hashicorp/raft over
// TCP (raft.NewTCPTransportWithConfig) with its log and stable store on
// dwal (package raftstore), one process per node.
//
//	raftkv --id ID --dir DIR --raft-addr HOST:PORT --http-addr HOST:PORT \
//	       --peers ID=RAFTADDR=HTTPADDR,...
//
// --peers lists every member, this node included. A node whose directory
// holds no raft state bootstraps the cluster with exactly that
// configuration (every member a voter); so do the others, with the same
// list, and raft keeps one. A node restarted from its directory (after a
// crash or a SIGKILL too) recovers its log, its vote and its latest
// snapshot from there and catches up from the leader.
//
// Each node dials a member's raft transport at the address its own
// --peers gives (the transport's ServerAddressProvider), so a proxy may
// stand in front of any link; the IDs and HTTP addresses must agree
// across the nodes.
//
// The HTTP API (http.go): PUT /kv/KEY (204 once committed and applied),
// GET /kv/KEY (200 or 404, linearizable), GET /status (JSON); a node that
// is not the leader answers 307 to the leader, or 503 when there is none.
//
// The state machine is a map; raft snapshots it (every
// --snapshot-threshold entries, checked every --snapshot-interval) and
// then compacts the dwal log, keeping --trailing-logs entries behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

var errUsage = errors.New("raftkv: usage")

// parseFlags reads the command line.
func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("raftkv", flag.ContinueOnError)
	fs.SetOutput(out)
	var cfg config
	var id, peerList string
	fs.StringVar(&id, "id", "", "this node's ID (one of --peers)")
	fs.StringVar(&cfg.dir, "dir", "", "this node's directory (created when missing)")
	fs.StringVar(&cfg.raftAddr, "raft-addr", "", "HOST:PORT this node's raft transport listens on")
	fs.StringVar(&cfg.httpAddr, "http-addr", "", "HOST:PORT this node's HTTP API listens on")
	fs.StringVar(&peerList, "peers", "", "every member, this node included: ID=RAFTADDR=HTTPADDR,...")
	fs.DurationVar(&cfg.heartbeat, "heartbeat", 500*time.Millisecond, "raft's heartbeat and election timeout (the leader lease is half)")
	fs.DurationVar(&cfg.rpcTimeout, "rpc-timeout", 2*time.Second, "I/O deadline of one raft RPC")
	fs.Uint64Var(&cfg.snapThreshold, "snapshot-threshold", 8192, "snapshot once this many log entries are past the last snapshot")
	fs.DurationVar(&cfg.snapInterval, "snapshot-interval", 10*time.Second, "how often raft checks --snapshot-threshold")
	fs.Uint64Var(&cfg.trailingLogs, "trailing-logs", 10240, "log entries kept behind a snapshot")
	fs.Int64Var(&cfg.segmentSize, "segment-size", 64<<20, "bytes of a dwal log segment")
	fs.BoolVar(&cfg.staleReads, "stale-reads", false, "serve GET from this node's state, unconfirmed, on any node: NOT linearizable (a test of the tests)")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "raft's log level (trace, debug, info, warn, error)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	for name, v := range map[string]string{"id": id, "dir": cfg.dir, "raft-addr": cfg.raftAddr, "http-addr": cfg.httpAddr, "peers": peerList} {
		if v == "" {
			return cfg, fmt.Errorf("%w: --%s is required", errUsage, name)
		}
	}
	cfg.id = raft.ServerID(id)
	var err error
	if cfg.peers, err = parsePeers(peerList); err != nil {
		return cfg, err
	}
	if _, ok := cfg.peers.find(cfg.id); !ok {
		return cfg, fmt.Errorf("%w: --id %s is not in --peers", errUsage, id)
	}
	if cfg.heartbeat <= 0 || cfg.rpcTimeout <= 0 || cfg.segmentSize <= 0 {
		return cfg, fmt.Errorf("%w: --heartbeat, --rpc-timeout and --segment-size must be positive", errUsage)
	}
	return cfg, nil
}

// run serves until SIGINT or SIGTERM, then shuts down cleanly.
func run(cfg config) error {
	logger := hclog.New(&hclog.LoggerOptions{Name: "raftkv." + string(cfg.id), Level: hclog.LevelFromString(cfg.logLevel), Output: os.Stderr})
	slogger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", string(cfg.id), "component", "dwal")
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return fmt.Errorf("raftkv: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("raftkv: --http-addr: %w", err)
	}
	n, err := startNode(cfg, logger, slogger)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: n.handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("serving", "http", ln.Addr().String(), "raft", cfg.raftAddr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case s := <-sig:
		logger.Info("shutting down", "signal", s.String())
	case err = <-served:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(ctx), n.close())
}
