package jepsen

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Mode is what a Link does with the traffic it carries.
type Mode int

const (
	// Up forwards every byte, in order.
	Up Mode = iota
	// Drop closes every connection of the link and every new one at
	// once: the dialer sees its connections reset and refused (a peer
	// known to be unreachable).
	Drop
	// Blackhole accepts connections and bytes but forwards nothing, so
	// the dialer's RPCs hang until its deadlines (packets silently
	// lost). Healing delivers what was held, in order, as TCP would
	// once its retransmissions get through.
	Blackhole
)

func (m Mode) String() string { return [...]string{"up", "drop", "blackhole"}[m] }

// Link is a TCP proxy for one direction of one pair of nodes: node From
// dials node To's raft transport through it, so the RPCs From sends and
// the answers To gives travel over it (a raft connection carries both
// ways of one RPC stream: cutting a Link cuts From's RPCs to To).
//
// NB: the connection to To is dialled when From's is accepted, also while
// the link is a blackhole (To sees a connection that carries nothing).
type Link struct {
	From, To int
	target   string
	ln       net.Listener

	mu    sync.Mutex
	up    *sync.Cond // broadcast when mode leaves Blackhole
	mode  Mode
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewLink listens on a loopback port for connections to forward to target.
func NewLink(from, to int, target string) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Link{From: from, To: to, target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	l.up = sync.NewCond(&l.mu)
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Addr is the address From dials.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Set changes the link's mode: to Drop closes every connection it holds.
func (l *Link) Set(m Mode) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mode = m
	if m == Drop {
		for c := range l.conns {
			c.Close()
		}
	}
	if m != Blackhole {
		l.up.Broadcast()
	}
}

// Mode returns the link's mode.
func (l *Link) Mode() Mode {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mode
}

// Close stops the link and closes its connections.
func (l *Link) Close() error {
	err := l.ln.Close()
	l.Set(Drop)
	l.wg.Wait()
	return err
}

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go l.serve(c)
	}
}

// serve forwards one connection both ways until either side closes it
// or the link drops it.
func (l *Link) serve(c net.Conn) {
	defer l.wg.Done()
	if l.Mode() == Drop {
		c.Close()
		return
	}
	t, err := net.Dial("tcp", l.target)
	if err != nil { // To is down: From's connection is refused too
		c.Close()
		return
	}
	if !l.track(c, t) {
		return
	}
	var done sync.WaitGroup
	done.Add(2)
	go func() { defer done.Done(); l.pump(t, c) }()
	go func() { defer done.Done(); l.pump(c, t) }()
	done.Wait()
	l.untrack(c, t)
}

// track registers a forwarded pair, or closes it when the link dropped
// meanwhile.
func (l *Link) track(c, t net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mode == Drop {
		c.Close()
		t.Close()
		return false
	}
	l.conns[c], l.conns[t] = struct{}{}, struct{}{}
	return true
}

func (l *Link) untrack(c, t net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	delete(l.conns, t)
	c.Close()
	t.Close()
}

// pump copies src to dst while the link is up, holding bytes while it is
// a blackhole. At the end of src it passes the end on (the other way may
// still carry bytes); on an error or a drop it closes both.
func (l *Link) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !l.waitUp() {
				break
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if errors.Is(err, io.EOF) {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
				return
			}
		}
		if err != nil {
			break
		}
	}
	src.Close()
	dst.Close()
}

// waitUp blocks while the link is a blackhole; false once it drops.
func (l *Link) waitUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.mode == Blackhole {
		l.up.Wait()
	}
	return l.mode == Up
}
