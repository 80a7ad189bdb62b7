package reconcile_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
)

// cable is a TCP forwarder in front of the API server that a test can cut
// and mend: the cheapest honest way to lose the API server and get it back,
// without stopping the one the other tests share.
type cable struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// newCable forwards a fresh 127.0.0.1 port to cfg's server and returns a copy
// of cfg that goes through it.
func newCable(t *testing.T, cfg *rest.Config) (*cable, *rest.Config) {
	t.Helper()
	u, err := url.Parse(cfg.Host)
	if err != nil || u.Host == "" {
		t.Fatalf("parse API server host %q: %v", cfg.Host, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	c := &cable{t: t, addr: ln.Addr().String(), target: u.Host, conns: map[net.Conn]struct{}{}}
	c.serve(ln)
	t.Cleanup(c.cut)

	through := rest.CopyConfig(cfg)
	u.Host = c.addr
	through.Host = u.String()
	return c, through
}

func (c *cable) serve(ln net.Listener) {
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go c.forward(conn)
		}
	}()
}

func (c *cable) forward(down net.Conn) {
	up, err := net.Dial("tcp", c.target)
	if err != nil {
		_ = down.Close()
		return
	}
	if !c.track(down, up) {
		return
	}
	go func() { _, _ = io.Copy(up, down); _ = up.Close() }()
	_, _ = io.Copy(down, up)
	_ = down.Close()
}

// track remembers live connections, or closes them if the cable is cut.
func (c *cable) track(conns ...net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln == nil {
		for _, conn := range conns {
			_ = conn.Close()
		}
		return false
	}
	for _, conn := range conns {
		c.conns[conn] = struct{}{}
	}
	return true
}

// cut refuses new connections and drops every open one.
func (c *cable) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil {
		_ = c.ln.Close()
		c.ln = nil
	}
	for conn := range c.conns {
		_ = conn.Close()
	}
	clear(c.conns)
}

// mend listens on the same address again.
func (c *cable) mend() {
	c.t.Helper()
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		c.t.Fatalf("listen again on %s: %v", c.addr, err)
	}
	c.serve(ln)
}
