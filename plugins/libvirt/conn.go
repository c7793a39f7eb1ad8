package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/go-hclog"
)

// dialTimeout bounds connecting to the daemon's socket and connectTimeout
// the whole opening handshake; RPCs are bounded by the caller's context
// (see conn.once).
const (
	dialTimeout    = 10 * time.Second
	connectTimeout = 30 * time.Second
)

// conn is one lazily opened connection to a libvirt daemon, opened on the
// URI the target names. go-libvirt's RPCs take no context, so conn.once
// closes the socket when the context ends: every pending call then fails
// with ErrInterrupted and the next call reconnects. conn.do retries what a
// restarting daemon causes (see retry.go).
type conn struct {
	uri    string
	socket string // configured socket; empty means detect
	log    hclog.Logger
	retry  retryPolicy

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

// once runs fn on an open connection, connecting first if needed. A
// connection found lost is dropped, so that the next call reconnects.
func (c *conn) once(ctx context.Context, fn func(l *golibvirt.Libvirt) error) error {
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
	if connectionLost(err) {
		c.discard(l, d)
	}
	return err
}

// open returns the connection, opening it when there is none. Opening is
// bounded by ctx and by connectTimeout, since a daemon that accepts but
// never answers would otherwise hold every caller behind c.mu.
//
// A daemon that answers and refuses the URI (a typo, an unknown driver,
// access denied) yields a terminal *refusedError; only when no socket
// answered at all is the error a *noAnswerError, which is retried.
func (c *conn) open(ctx context.Context) (*golibvirt.Libvirt, *trackingDialer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l != nil && c.l.IsConnected() {
		return c.l, c.dial, nil
	}
	octx := ctx
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var tried []string
	var refused *refusedError
	for _, path := range socketCandidates(c.uri, c.socket) {
		if _, err := os.Stat(path); err != nil {
			tried = append(tried, fmt.Sprintf("%s (%s)", path, statProblem(err)))
			continue
		}
		d := &trackingDialer{path: path}
		l := golibvirt.NewWithDialer(d)
		stop := context.AfterFunc(ctx, d.abort)
		err := l.ConnectToURI(golibvirt.ConnectURI(c.uri))
		if !stop() {
			if octx.Err() != nil {
				return nil, nil, fmt.Errorf("connect to libvirt %s on %s: %w", c.uri, path, octx.Err())
			}
			tried = append(tried, fmt.Sprintf("%s (accepted the connection but did not answer within %s)", path, connectTimeout))
			break
		}
		var lerr golibvirt.Error
		switch {
		case err == nil:
			c.l, c.dial = l, d
			return l, d, nil
		case errors.As(err, &lerr):
			if refused == nil {
				refused = &refusedError{uri: c.uri, socket: path, err: lerr}
			}
		default:
			tried = append(tried, fmt.Sprintf("%s (%s)", path, dialProblem(err)))
		}
	}
	if refused != nil {
		return nil, nil, refused
	}
	return nil, nil, &noAnswerError{uri: c.uri, tried: tried, configured: c.socket != ""}
}

// discard drops l, found lost, so that the next call opens a new
// connection, and closes its socket (which ends go-libvirt's reader).
func (c *conn) discard(l *golibvirt.Libvirt, d *trackingDialer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l == l {
		c.l, c.dial = nil, nil
	}
	d.abort()
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

// refusedError is a daemon's answer refusing to open the URI: what libvirt
// said, with the URI and the socket that answered.
type refusedError struct {
	uri, socket string
	err         golibvirt.Error
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("libvirt refused uri %q: %s (the daemon on %s answered)", e.uri, e.err.Message, e.socket)
}

func (e *refusedError) Unwrap() error { return e.err }

// noAnswerError says that no daemon answered on any socket tried.
type noAnswerError struct {
	uri        string
	tried      []string // each socket with what happened
	configured bool     // the socket attribute named the one socket tried
	attempts   int      // set by conn.do when it gave up retrying
	spent      time.Duration
}

func (e *noAnswerError) Error() string {
	var retried string
	if e.attempts > 1 {
		retried = fmt.Sprintf(" in %d attempts over %s", e.attempts, e.spent)
	}
	return fmt.Sprintf("libvirt %s: no daemon answered on %s%s; is libvirtd (or virtqemud with virtproxyd) running on this host?",
		e.uri, strings.Join(e.tried, ", "), retried)
}

// statProblem says why a socket path cannot be used.
func statProblem(err error) string {
	if errors.Is(err, os.ErrNotExist) {
		return "absent"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// dialProblem says how a socket failed to answer: refused, dropped, ...
func dialProblem(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, golibvirt.ErrInterrupted), errors.Is(err, syscall.EINVAL),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		return "closed the connection without answering"
	case errors.As(err, &errno):
		return errno.Error()
	}
	return err.Error()
}
