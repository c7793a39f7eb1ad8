package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// dialTimeout bounds connecting to the daemon's socket and connectTimeout
// the whole opening handshake; RPCs are bounded by the caller's context
// (see conn.do).
const (
	dialTimeout    = 10 * time.Second
	connectTimeout = 30 * time.Second
)

// conn is one lazily opened connection to a libvirt daemon, opened on the
// URI the target names. go-libvirt's RPCs take no context, so conn.do closes
// the socket when the context ends: every pending call then fails with
// ErrInterrupted and the next call reconnects.
type conn struct {
	uri    string
	socket string // configured socket; empty means detect

	mu   sync.Mutex
	l    *golibvirt.Libvirt
	dial *trackingDialer
}

// trackingDialer dials the daemon's unix socket and remembers the net.Conn
// so that a cancelled context can close it. Once aborted it stays so: a
// dial that completes afterwards is closed at once.
type trackingDialer struct {
	path    string
	mu      sync.Mutex
	c       net.Conn
	aborted bool
}

var errAborted = errors.New("connection aborted")

func (d *trackingDialer) Dial() (net.Conn, error) {
	c, err := net.DialTimeout("unix", d.path, dialTimeout)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.aborted {
		c.Close()
		return nil, errAborted
	}
	d.c = c
	return c, nil
}

func (d *trackingDialer) abort() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.aborted = true
	if d.c != nil {
		d.c.Close()
	}
}

// do runs fn on an open connection, connecting first if needed.
func (c *conn) do(ctx context.Context, fn func(l *golibvirt.Libvirt) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l, d, err := c.open(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, d.abort)
	err = fn(l)
	if !stop() {
		// The context ended while fn ran: its error is the reason.
		return fmt.Errorf("libvirt %s: %w", c.uri, ctx.Err())
	}
	return err
}

// open returns the connection, opening it when there is none. Opening is
// bounded by ctx and by connectTimeout, since a daemon that accepts but
// never answers would otherwise hold every caller behind c.mu.
func (c *conn) open(ctx context.Context) (*golibvirt.Libvirt, *trackingDialer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l != nil && c.l.IsConnected() {
		return c.l, c.dial, nil
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var tried []string
	for _, path := range socketCandidates(c.uri, c.socket) {
		if _, err := os.Stat(path); err != nil {
			tried = append(tried, path+" (absent)")
			continue
		}
		d := &trackingDialer{path: path}
		l := golibvirt.NewWithDialer(d)
		stop := context.AfterFunc(ctx, d.abort)
		err := l.ConnectToURI(golibvirt.ConnectURI(c.uri))
		if !stop() {
			return nil, nil, fmt.Errorf("connect to libvirt %s on %s: %w", c.uri, path, ctx.Err())
		}
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", path, err))
			continue
		}
		c.l, c.dial = l, d
		return l, d, nil
	}
	return nil, nil, fmt.Errorf("connect to libvirt %s: no daemon answered on %s; is libvirtd (or virtproxyd/virtqemud) running? On a CI or dev machine run .ci/setup as root",
		c.uri, strings.Join(tried, ", "))
}

// close disconnects if connected.
func (c *conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l == nil || !c.l.IsConnected() {
		return nil
	}
	err := c.l.Disconnect()
	c.l = nil
	if err != nil && !errors.Is(err, golibvirt.ErrInterrupted) {
		return fmt.Errorf("disconnect from libvirt %s: %w", c.uri, err)
	}
	return nil
}

// socketCandidates lists the unix sockets to try for uri, best first: the
// configured one alone, or the monolithic libvirtd's (also served by
// virtproxyd in a modular install), then the modular driver daemon's.
func socketCandidates(uri, configured string) []string {
	if configured != "" {
		return []string{configured}
	}
	u, err := url.Parse(uri)
	if err != nil {
		return []string{"/run/libvirt/libvirt-sock"}
	}
	driver := strings.SplitN(u.Scheme, "+", 2)[0]
	base := []string{"/run/libvirt", "/var/run/libvirt"}
	if u.Path == "/session" {
		if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
			base = []string{filepath.Join(rt, "libvirt")}
		}
	}
	var out []string
	for _, b := range base {
		out = append(out, filepath.Join(b, "libvirt-sock"))
	}
	if driver != "" && driver != "test" {
		for _, b := range base {
			out = append(out, filepath.Join(b, "virt"+driver+"d-sock"))
		}
	}
	return out
}

// isLibvirtError reports whether err carries libvirt error code code.
func isLibvirtError(err error, code golibvirt.ErrorNumber) bool {
	var e golibvirt.Error
	return errors.As(err, &e) && e.Code == uint32(code)
}
