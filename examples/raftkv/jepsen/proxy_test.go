package jepsen

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return line, err
}

// TestLink: bytes go through while the link is up; a blackhole holds
// them (the dialer times out) and healing delivers them in order; a drop
// resets the connections it holds and refuses new ones.
func TestLink(t *testing.T) {
	l, err := NewLink(0, 1, echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "one", 5*time.Second); err != nil || got != "one\n" {
		t.Fatalf("through an up link: %q, %v", got, err)
	}

	l.Set(Blackhole)
	if got, err := roundTrip(c, "two", 200*time.Millisecond); err == nil {
		t.Fatalf("a blackhole let %q through", got)
	}
	l.Set(Up)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "two\n" {
		t.Fatalf("after healing the blackhole: %q, %v; want the held bytes", got, err)
	}

	l.Set(Drop)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a dropped link left its connection open")
	}
	d, err := net.Dial("tcp", l.Addr())
	if err == nil {
		d.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := roundTrip(d, "three", 5*time.Second); err == nil {
			t.Fatal("a dropped link forwarded a new connection")
		}
		d.Close()
	}

	l.Set(Up)
	e, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got, err := roundTrip(e, "four", 5*time.Second); err != nil || got != "four\n" {
		t.Fatalf("after healing the drop: %q, %v", got, err)
	}
}
