package vsphere

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmware/govmomi/session/keepalive"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins"
)

// conn is one logged-in session.
type conn struct {
	c  *vim25.Client
	sc *soap.Client
}

// client returns the session, logging in on first use. A failed attempt is
// not cached: the next call tries again.
func (s *Source) client(ctx context.Context) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return s.conn, nil
	}
	c, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.conn = c
	return c, nil
}

func (s *Source) connect(ctx context.Context) (*conn, error) {
	set := s.set
	sc := soap.NewClient(set.u, set.insecure)
	d := &tlsDialer{sc: sc, insecure: set.insecure}
	if set.caFile != "" {
		pem, err := os.ReadFile(set.caFile)
		if err != nil {
			return nil, plugins.Terminal(fmt.Errorf("ca_file: %w", err))
		}
		d.roots = x509.NewCertPool()
		if !d.roots.AppendCertsFromPEM(pem) {
			return nil, plugins.Terminal(fmt.Errorf("ca_file %s holds no PEM certificate", set.caFile))
		}
	}
	if set.thumbprint != "" {
		sc.SetThumbprint(set.u.Host, set.thumbprint)
	}
	sc.DefaultTransport().DialTLSContext = d.DialTLSContext
	if s.wrapTransport != nil {
		sc.Client.Transport = s.wrapTransport(sc.Client.Transport)
	}
	nctx, cancel := withBound(ctx, s.timing.call)
	c, err := vim25.NewClient(nctx, sc)
	cancel()
	if err != nil {
		return nil, s.connectError(err)
	}
	// Every call, logins and keep-alives included, has a deadline.
	ping := func() error {
		ctx, cancel := withBound(context.Background(), s.timing.call)
		defer cancel()
		_, err := methods.GetCurrentTime(ctx, sc)
		return err
	}
	rl := &relogin{
		rt:   bounded{rt: keepalive.NewHandlerSOAP(sc, s.keepAlive, ping), d: s.timing.call},
		sm:   *c.ServiceContent.SessionManager,
		user: set.username, pass: set.password,
		log: s.log,
	}
	c.RoundTripper = rl
	if err := rl.login(ctx, 0); err != nil {
		sc.CloseIdleConnections()
		return nil, s.connectError(err)
	}
	s.log.Debug("logged in", "url", set.where(), "user", set.username)
	return &conn{c: c, sc: sc}, nil
}

// connectError turns a connection failure into a message a user can act
// on. Certificate and credential failures are terminal: retrying the same
// settings cannot fix them.
func (s *Source) connectError(err error) error {
	where := s.set.where()
	var ce *certError
	var op *net.OpError
	switch {
	case errors.As(err, &ce):
		return plugins.Terminal(fmt.Errorf("connect to vSphere at %s: %w", where, ce))
	case isFault[types.InvalidLogin](err):
		return plugins.Terminal(fmt.Errorf("login to vSphere at %s as %q: incorrect user name or password", where, s.set.username))
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("vSphere at %s is unreachable: %w", where, err)
	}
	return fmt.Errorf("connect to vSphere at %s: %w", where, err)
}

// relogin logs in again when the server says the session is gone
// (NotAuthenticated: it expired, or vCenter restarted) and retries the call
// once. Its inner round tripper is govmomi's keep-alive handler, which
// starts pinging on Login and stops on Logout.
type relogin struct {
	rt   soap.RoundTripper
	sm   types.ManagedObjectReference
	user string
	pass string
	log  hclog.Logger

	mu  sync.Mutex
	gen uint64 // successful logins so far
}

func (r *relogin) RoundTrip(ctx context.Context, req, res soap.HasFault) error {
	switch req.(type) {
	case *methods.LoginBody, *methods.LogoutBody:
		return r.rt.RoundTrip(ctx, req, res)
	}
	r.mu.Lock()
	gen := r.gen
	r.mu.Unlock()
	err := r.rt.RoundTrip(ctx, req, res)
	if !isFault[types.NotAuthenticated](err) {
		return err
	}
	r.log.Info("vSphere session lost; logging in again")
	if lerr := r.login(ctx, gen); lerr != nil {
		return fmt.Errorf("%w (logging in again failed: %v)", err, lerr)
	}
	clearFault(res)
	return r.rt.RoundTrip(ctx, req, res)
}

// login logs in unless another goroutine already did since generation
// seen.
func (r *relogin) login(ctx context.Context, seen uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != seen {
		return nil
	}
	req := types.Login{This: r.sm, UserName: r.user, Password: r.pass}
	if _, err := methods.Login(ctx, r.rt, &req); err != nil {
		return err
	}
	r.gen++
	return nil
}

// clearFault resets the Fault_ field of a methods.*Body, which decoding a
// second response into it would otherwise leave set.
func clearFault(res soap.HasFault) {
	v := reflect.ValueOf(res)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return
	}
	if f := v.Elem().FieldByName("Fault_"); f.IsValid() && f.CanSet() {
		f.Set(reflect.Zero(f.Type()))
	}
}

// isFault reports whether err, or an error it wraps, is a SOAP, vim or
// task fault of type T.
func isFault[T any](err error) bool {
	switch faultOf(err).(type) {
	case T, *T:
		return true
	}
	return false
}

// faultOf digs the fault out of err: a value (as decoded from SOAP) or a
// pointer (as task errors carry it).
func faultOf(err error) any {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch {
		case soap.IsSoapFault(e):
			return soap.ToSoapFault(e).VimFault()
		case soap.IsVimFault(e):
			return soap.ToVimFault(e)
		}
		if te, ok := e.(interface{ Fault() types.BaseMethodFault }); ok {
			return te.Fault()
		}
	}
	return nil
}

// Close logs out. It is safe to call more than once.
func (s *Source) Close() error {
	s.mu.Lock()
	c := s.conn
	s.conn = nil
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := types.Logout{This: *c.c.ServiceContent.SessionManager}
	_, err := methods.Logout(ctx, c.c, &req)
	c.sc.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("logout from vSphere at %s: %w", s.set.where(), err)
	}
	return nil
}
