package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"
)

// The HTTP API:
//
//	PUT /kv/KEY   body: the value  204 once committed by raft and applied
//	GET /kv/KEY                    200 and the value, or 404; linearizable
//	GET /status                    200 and the node's state as JSON
//
// A node that is not the leader answers the two /kv/ requests with 307
// and Location on the leader's HTTP address, or with 503 when it knows no
// leader; neither wrote anything. 503 also answers a PUT that this node
// could not append (it lost leadership first), 504 one whose outcome is
// unknown (it may be committed: the leader lost its leadership, or the
// request's time ran out, while it was in flight), and 503 a read the
// leader could not confirm.

// maxValue bounds a PUT's body.
const maxValue = 1 << 20

// opTimeout bounds how long a request waits for raft.
const opTimeout = 5 * time.Second

func (n *node) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /kv/{key...}", n.handlePut)
	mux.HandleFunc("GET /kv/{key...}", n.handleGet)
	mux.HandleFunc("GET /status", n.handleStatus)
	return mux
}

func (n *node) handlePut(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("key")
	if key == "" {
		http.Error(w, "raftkv: empty key", http.StatusBadRequest)
		return
	}
	val, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxValue))
	if err != nil {
		http.Error(w, "raftkv: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	err = wait(req.Context(), func() error { return n.put(key, val, opTimeout) })
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, errNotLeader):
		n.redirect(w, req)
	case errors.Is(err, errUnknown):
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (n *node) handleGet(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("key")
	err := wait(req.Context(), func() error { return n.read(opTimeout) })
	switch {
	case errors.Is(err, errNotLeader):
		n.redirect(w, req)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	v, ok := n.fsm.get(key)
	if !ok {
		http.Error(w, "raftkv: no such key", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(v)
}

// redirect sends the client to the leader (307), or says there is none
// (503). Neither wrote anything.
func (n *node) redirect(w http.ResponseWriter, req *http.Request) {
	addr, err := n.leader()
	if _, id := n.r.LeaderWithID(); err != nil || id == n.cfg.id {
		// No leader known, or this node still believes it leads but could
		// not serve the request: the client retries later.
		http.Error(w, errNoLeader.Error(), http.StatusServiceUnavailable)
		return
	}
	u := url.URL{Scheme: "http", Host: addr, Path: req.URL.Path}
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusTemporaryRedirect)
}

func (n *node) handleStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(n.status())
}

// wait runs op and returns its error, or an errUnknown when ctx ends
// first (the client went away; op goes on and its outcome is unknown).
func wait(ctx context.Context, op func() error) error {
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errors.Join(errUnknown, ctx.Err())
	}
}
