package vsphere

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/vmware/govmomi/vim25/soap"

	"github.com/hypersdk/hyperagent/plugins"
)

// timing bounds everything an export waits for, so that a vCenter that
// stops answering (a frozen process) fails the export instead of hanging
// it. Tests shorten it.
type timing struct {
	call    time.Duration // one vSphere call, request to answer
	stall   time.Duration // a download that receives no byte for this long fails
	wait    time.Duration // a task or a lease to get ready, polled
	poll    time.Duration // between two looks at a task, a lease or a power state
	cleanup time.Duration // lease abort, and power-on, once the export was cancelled
	restore time.Duration // power-on after a failed export
	retry   retryPolicy
}

// retryPolicy is capped exponential backoff.
type retryPolicy struct {
	first, max time.Duration // the first pause, the longest
	tries      uint          // attempts in all, the first one included
	elapsed    time.Duration // no new attempt once this much time has passed
}

func defaultTiming() timing {
	return timing{
		call: 2 * time.Minute, stall: 60 * time.Second, wait: 10 * time.Minute, poll: time.Second,
		cleanup: 10 * time.Second, restore: 5 * time.Minute,
		retry: retryPolicy{first: time.Second, max: 30 * time.Second, tries: 5, elapsed: 10 * time.Minute},
	}
}

// retry runs op until it succeeds, fails in a way another attempt cannot
// fix (transient says which), or the policy gives up. Errors that wrap a
// cancellation keep their own message.
func (s *Source) retry(ctx context.Context, what string, op func() error) error {
	p := s.timing.retry
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = p.first, p.max
	var last error
	tries := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		tries++
		last = op()
		if last != nil && !transient(ctx, last) {
			return struct{}{}, backoff.Permanent(last)
		}
		return struct{}{}, last
	}, backoff.WithBackOff(b), backoff.WithMaxTries(p.tries), backoff.WithMaxElapsedTime(p.elapsed),
		backoff.WithNotify(func(err error, d time.Duration) {
			s.log.Warn("transient failure; retrying", "what", what, "in", d.Round(time.Millisecond), "error", err)
			if s.retried != nil {
				s.retried(what, err)
			}
		}))
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && !errors.Is(last, ctx.Err()): // cancelled between attempts
		return fmt.Errorf("%w (while waiting to retry after: %v)", ctx.Err(), last)
	case ctx.Err() != nil || !transient(ctx, last):
		return last
	case tries > 1:
		return &exhaustedError{tries: tries, err: last}
	}
	return last
}

// exhaustedError is a transient failure that outlasted its retries: an
// enclosing retry must not start over with it.
type exhaustedError struct {
	tries int
	err   error
}

func (e *exhaustedError) Error() string {
	return fmt.Sprintf("%v (gave up after %d attempts)", e.err, e.tries)
}
func (e *exhaustedError) Unwrap() error { return e.err }

// transientError marks a failure of the network or of the server's
// availability, not of the request: another attempt may succeed.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func retryable(err error) error { return &transientError{err: err} }

// transient tells failures worth another attempt (a refused or reset
// connection, a cut or stalled download, a call vSphere did not answer, a
// 5xx) from those that would fail the same way again: a vSphere fault (the
// server understood and said no; an expired session is handled below, by
// relogin), anything terminal, a cancellation.
func transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || plugins.IsTerminal(err) {
		return false
	}
	var ex *exhaustedError
	if errors.As(err, &ex) || faultOf(err) != nil {
		return false
	}
	var te *transientError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &te), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return true
	case errors.As(err, &op) && (op.Op == "dial" || op.Op == "read" || op.Op == "write"):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	}
	return false
}

// bounded gives every vSphere call a deadline of its own, so that a server
// that accepted the connection and went silent cannot hold a call forever.
// The package never long-polls (no WaitForUpdatesEx: it polls with short
// calls), so one bound fits every call.
type bounded struct {
	rt soap.RoundTripper
	d  time.Duration
}

var errNoAnswer = errors.New("no answer")

func (b bounded) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	if b.d <= 0 {
		return b.rt.RoundTrip(ctx, req, res)
	}
	cctx, cancel := context.WithTimeoutCause(ctx, b.d, errNoAnswer)
	defer cancel()
	err := b.rt.RoundTrip(cctx, req, res)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(cctx), errNoAnswer) {
		return retryable(fmt.Errorf("vSphere did not answer %s within %s", methodName(req), b.d))
	}
	return err
}

// withBound is context.WithTimeout, except that d <= 0 sets no deadline.
func withBound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// methodName is the SOAP method of a methods.*Body request.
func methodName(req soap.HasFault) string {
	t := reflect.TypeOf(req)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.TrimSuffix(t.Name(), "Body")
}

// poll calls look every s.timing.poll until it reports done, fails in a
// way that is not transient, ctx ends, or within passes. A transient
// failure of one look is logged and the next look tries again.
func (s *Source) poll(ctx context.Context, what string, within time.Duration, look func(context.Context) (bool, error)) error {
	deadline := fmt.Errorf("%s: not done within %s", what, within)
	pctx, cancel := context.WithTimeoutCause(ctx, within, deadline)
	defer cancel()
	t := time.NewTicker(s.timing.poll)
	defer t.Stop()
	for {
		done, err := look(pctx)
		switch {
		case err != nil && pctx.Err() != nil:
			return context.Cause(pctx)
		case err != nil && !transient(pctx, err):
			return err
		case err != nil:
			s.log.Debug("look failed; looking again", "what", what, "error", err)
		case done:
			return nil
		}
		select {
		case <-pctx.Done():
			return context.Cause(pctx)
		case <-t.C:
		}
	}
}
