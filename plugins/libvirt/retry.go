package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/hypersdk/hyperagent/plugins"
)

// retryPolicy is how long a call waits out a daemon that is restarting:
// capped exponential backoff from Initial to Max between attempts, for at
// most MaxElapsed in all.
type retryPolicy struct {
	Initial, Max, MaxElapsed time.Duration
}

// defaultRetry covers a libvirtd restart (a few seconds) with room to
// spare, and reports a daemon that is down within half a minute.
var defaultRetry = retryPolicy{Initial: 250 * time.Millisecond, Max: 4 * time.Second, MaxElapsed: 30 * time.Second}

// do runs fn on an open connection, retrying while the daemon does not
// answer or drops the connection (transient), and never after the daemon
// answered with an error, after a terminal error, or once ctx has ended.
//
// fn must be safe to run again: it may have run, in part or in full, on a
// connection that was lost before its answer came back. Every caller's fn
// is either read-only or a definition keyed by the domain's UUID, which
// libvirt applies as an update when it is repeated.
func (c *conn) do(ctx context.Context, fn func(l *golibvirt.Libvirt) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("libvirt %s: %w", c.uri, err)
	}
	p := c.retry
	if p.Initial <= 0 {
		p = defaultRetry
	}
	var attempts int
	var last error
	start := time.Now()
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		err := classify(c.once(ctx, fn))
		last = err
		if err == nil || ctx.Err() != nil || !transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval: p.Initial, MaxInterval: p.Max,
			Multiplier: 2, RandomizationFactor: 0.2,
		}),
		backoff.WithMaxElapsedTime(p.MaxElapsed),
		backoff.WithNotify(func(err error, wait time.Duration) {
			c.log.Warn("libvirt did not answer; retrying", "uri", c.uri, "attempt", attempts, "wait", wait, "error", err)
		}))
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && !errors.Is(last, ctx.Err()):
		// Cancelled while waiting to retry: say so, and why it waited.
		return fmt.Errorf("libvirt %s: %w (while retrying after: %v)", c.uri, ctx.Err(), last)
	case transient(err) && attempts > 1:
		spent := time.Since(start).Round(10 * time.Millisecond)
		var na *noAnswerError
		if errors.As(err, &na) {
			na.attempts, na.spent = attempts, spent
			return err
		}
		return fmt.Errorf("%w (gave up after %d attempts over %s)", err, attempts, spent)
	}
	return err
}

// transient reports whether err is one a restarting daemon causes: no
// daemon answered, or the connection was lost mid-call.
func transient(err error) bool {
	if err == nil || plugins.IsTerminal(err) {
		return false
	}
	var na *noAnswerError
	return errors.As(err, &na) || connectionLost(err)
}

// connectionLost reports whether err says the connection broke: the
// daemon closed it (EOF, reset, a call interrupted) or it was found
// closed. An error the daemon answered with is never one.
func connectionLost(err error) bool {
	var lerr golibvirt.Error
	if err == nil || errors.As(err, &lerr) {
		return false
	}
	for _, target := range []error{golibvirt.ErrInterrupted, io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.EPIPE, syscall.ECONNRESET, syscall.ECONNREFUSED,
		// go-libvirt's answer to a call on a socket it found closed.
		syscall.EINVAL} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// terminalCodes are libvirt's answers that retrying cannot change: the
// definition is wrong, unsupported, or not allowed.
var terminalCodes = map[golibvirt.ErrorNumber]bool{
	golibvirt.ErrNoSupport:            true,
	golibvirt.ErrInvalidArg:           true,
	golibvirt.ErrXMLError:             true,
	golibvirt.ErrDomExist:             true,
	golibvirt.ErrOperationDenied:      true,
	golibvirt.ErrXMLDetail:            true,
	golibvirt.ErrInvalidMac:           true,
	golibvirt.ErrAuthFailed:           true,
	golibvirt.ErrConfigUnsupported:    true,
	golibvirt.ErrArgumentUnsupported:  true,
	golibvirt.ErrOperationUnsupported: true,
	golibvirt.ErrAccessDenied:         true,
	golibvirt.ErrCPUIncompatible:      true,
	golibvirt.ErrXMLInvalidSchema:     true,
}

// classify marks the errors retrying cannot fix as terminal: a URI the
// daemon refused (also shown at the uri attribute), and the libvirt
// answers in terminalCodes. A socket that the socket attribute named and
// that did not answer is shown at that attribute (and stays retryable).
func classify(err error) error {
	var refused *refusedError
	var na *noAnswerError
	var lerr golibvirt.Error
	switch {
	case err == nil || plugins.IsTerminal(err):
		return err
	case errors.As(err, &refused):
		return plugins.AttrError("uri", plugins.Terminal(err))
	case errors.As(err, &na):
		if na.configured {
			return plugins.AttrError("socket", err)
		}
	case errors.As(err, &lerr) && terminalCodes[golibvirt.ErrorNumber(lerr.Code)]:
		return plugins.Terminal(err)
	}
	return err
}

// isLibvirtError reports whether err carries libvirt error code code.
func isLibvirtError(err error, code golibvirt.ErrorNumber) bool {
	var e golibvirt.Error
	return errors.As(err, &e) && e.Code == uint32(code)
}
