package vsphere

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

func observeOne(ctx context.Context, s *Source, p string) (plugins.VMObservation, error) {
	res, err := s.ObserveVMs(ctx, plugins.ObserveVMsRequest{VMs: []plugins.VMQuery{{Address: "m", Path: p}}})
	return res.VMs["m"], err
}

func TestTLSTrust(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	caFile, err := srv.Server.CertificateFile()
	if err != nil {
		t.Fatal(err)
	}
	wrong := "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"
	tests := map[string]struct {
		attrs    map[string]cty.Value
		wantErr  []string // substrings; nil means success
		terminal bool
	}{
		"pinned thumbprint": {attrs: nil},
		"pinned lower case without colons": {attrs: map[string]cty.Value{
			"thumbprint": cty.StringVal(strings.ToLower(strings.ReplaceAll(srv.Thumbprint, ":", "")))}},
		"ca_file":  {attrs: map[string]cty.Value{"thumbprint": cty.NullVal(cty.String), "ca_file": cty.StringVal(caFile)}},
		"insecure": {attrs: map[string]cty.Value{"thumbprint": cty.NullVal(cty.String), "insecure": cty.True}},
		"wrong thumbprint": {attrs: map[string]cty.Value{"thumbprint": cty.StringVal(wrong)},
			wantErr: []string{"does not match", srv.Thumbprint, wrong}, terminal: true},
		"unknown certificate": {attrs: map[string]cty.Value{"thumbprint": cty.NullVal(cty.String)},
			wantErr: []string{"x509", "thumbprint = \"" + srv.Thumbprint + "\""}, terminal: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newTestSource(t, blockConfig(srv, tc.attrs))
			obs, err := observeOne(context.Background(), s, "/DC0/vm/DC0_H0_VM0")
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !obs.Found {
					t.Fatalf("VM not found: %+v", obs.Findings)
				}
				return
			}
			if err == nil {
				t.Fatal("connected; want an error")
			}
			t.Log(err)
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if plugins.IsTerminal(err) != tc.terminal {
				t.Errorf("terminal = %v, want %v", plugins.IsTerminal(err), tc.terminal)
			}
		})
	}
}

func TestWrongPassword(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	s := newTestSource(t, blockConfig(srv, map[string]cty.Value{"password": cty.StringVal("hunter2-wrong")}))
	_, err := observeOne(context.Background(), s, "DC0_H0_VM0")
	if err == nil {
		t.Fatal("logged in with a wrong password")
	}
	if !strings.Contains(err.Error(), "incorrect user name or password") || !plugins.IsTerminal(err) {
		t.Errorf("error = %v (terminal %v), want a terminal wrong-password error", err, plugins.IsTerminal(err))
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error reveals the password: %v", err)
	}
	t.Log(err)
	if srv.Logins() == 0 {
		t.Error("the simulator saw no login attempt")
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	clearGovcEnv(t)
	s := buildSource(t, cty.ObjectVal(map[string]cty.Value{
		"url": cty.StringVal("https://bob:pa55word@" + addr + "/sdk"), "username": cty.NullVal(cty.String),
		"password": cty.NullVal(cty.String), "datacenter": cty.NullVal(cty.String), "thumbprint": cty.NullVal(cty.String),
		"ca_file": cty.NullVal(cty.String), "insecure": cty.True,
		"max_parallel_exports": cty.NumberIntVal(1), "max_parallel_disks": cty.NumberIntVal(1),
	}))
	_, err = observeOne(context.Background(), s, "x")
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("error = %v, want unreachable", err)
	}
	t.Log(err)
	if strings.Contains(err.Error(), "pa55word") {
		t.Errorf("error reveals the password: %v", err)
	}
	if plugins.IsTerminal(err) {
		t.Error("an unreachable host is worth retrying; got a terminal error")
	}
}

// TestRelogin ends the source's session on the server; the next call must
// log in again and succeed.
func TestRelogin(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	s := newTestSource(t, blockConfig(srv, nil))
	ctx := context.Background()
	if _, err := observeOne(ctx, s, "DC0_H0_VM0"); err != nil {
		t.Fatal(err)
	}
	before := srv.Logins()
	c, _ := admin(t, srv)
	sm := session.NewManager(c.Client)
	mine, err := sm.UserSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m mo.SessionManager
	if err := c.RetrieveOne(ctx, sm.Reference(), []string{"sessionList"}, &m); err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, us := range m.SessionList {
		if us.Key != mine.Key {
			others = append(others, us.Key)
		}
	}
	if len(others) == 0 {
		t.Fatal("the source's session is not listed")
	}
	if err := sm.TerminateSession(ctx, others); err != nil {
		t.Fatal(err)
	}
	obs, err := observeOne(ctx, s, "DC0_H0_VM0")
	if err != nil {
		t.Fatalf("observe after the session ended: %v", err)
	}
	if !obs.Found {
		t.Fatal("VM not found after re-login")
	}
	if got := srv.Logins() - before; got != 2 { // the admin's and the re-login
		t.Errorf("logins after termination = %d, want 2", got)
	}
}

func TestCloseLogsOut(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	s := newTestSource(t, blockConfig(srv, nil))
	ctx := context.Background()
	c, _ := admin(t, srv)
	if _, err := observeOne(ctx, s, "DC0_H0_VM0"); err != nil {
		t.Fatal(err)
	}
	if n := sessions(t, c.Client); n != 2 {
		t.Fatalf("%d sessions before Close, want the admin's and the source's", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := sessions(t, c.Client); n != 1 {
		t.Errorf("%d sessions after Close, want the admin's only", n)
	}
	// A closed source connects again on use.
	if _, err := observeOne(ctx, s, "DC0_H0_VM0"); err != nil {
		t.Fatal(err)
	}
}

func sessions(t *testing.T, c *vim25.Client) int {
	t.Helper()
	var m mo.SessionManager
	if err := property.DefaultCollector(c).RetrieveOne(context.Background(), *c.ServiceContent.SessionManager, []string{"sessionList"}, &m); err != nil {
		t.Fatal(err)
	}
	return len(m.SessionList)
}

// TestGovcEnvironment connects with a block that sets nothing but lets
// govc's environment say where and how, as a govc user's shell does.
func TestGovcEnvironment(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	clearGovcEnv(t)
	t.Setenv("GOVC_URL", srv.GovcURL())
	t.Setenv("GOVC_THUMBPRINT", srv.Thumbprint)
	t.Setenv("GOVC_DATACENTER", "DC0")
	null := cty.NullVal(cty.String)
	s := buildSource(t, cty.ObjectVal(map[string]cty.Value{
		"url": null, "username": null, "password": null, "datacenter": null, "thumbprint": null, "ca_file": null,
		"insecure": cty.False, "max_parallel_exports": cty.NumberIntVal(4), "max_parallel_disks": cty.NumberIntVal(2),
	}))
	obs, err := observeOne(context.Background(), s, "DC0_H0_VM0")
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Found {
		t.Fatalf("not found: %+v", obs.Findings)
	}
	t.Setenv("GOVC_THUMBPRINT", "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33")
	s = buildSource(t, cty.ObjectVal(map[string]cty.Value{
		"url": null, "username": null, "password": null, "datacenter": null, "thumbprint": null, "ca_file": null,
		"insecure": cty.False, "max_parallel_exports": cty.NumberIntVal(4), "max_parallel_disks": cty.NumberIntVal(2),
	}))
	if _, err := observeOne(context.Background(), s, "DC0_H0_VM0"); err == nil || !strings.Contains(err.Error(), srv.Thumbprint) {
		t.Errorf("a wrong GOVC_THUMBPRINT gave %v, want an error naming the server's thumbprint", err)
	}
}

// TestPasswordNeverShown runs a failed and a successful session with the
// most verbose logging and looks for the password in every log line and
// error.
func TestPasswordNeverShown(t *testing.T) {
	const secret = "Zq9-very-secret-7Kp"
	srv := startSim(t, vcsimtest.Options{Password: secret})
	clearGovcEnv(t)
	var logs strings.Builder
	var mu sync.Mutex
	build := func(password string) *Source {
		v, err := Factory().New(context.Background(), plugins.NewRequest{
			Addr:   addrs.Plugin{Kind: addrs.KindSource, Type: Type, Name: "test"},
			Config: blockConfig(srv, map[string]cty.Value{"password": cty.StringVal(password)}),
			Logger: hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&mu, &logs}, Level: hclog.Trace}),
		})
		if err != nil {
			t.Fatal(err)
		}
		s := v.(*Source)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ctx := context.Background()
	_, errWrong := observeOne(ctx, build(secret+"x"), "DC0_H0_VM0")
	if errWrong == nil {
		t.Fatal("logged in with a wrong password")
	}
	good := build(secret)
	if _, err := observeOne(ctx, good, "DC0_H0_VM0"); err != nil {
		t.Fatal(err)
	}
	if err := good.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the check would prove nothing")
	}
	for _, text := range []string{logs.String(), errWrong.Error(), fmt.Sprintf("%+v", good.set.u)} {
		if strings.Contains(text, secret) || strings.Contains(text, url.QueryEscape(secret)) {
			t.Errorf("the password appears in: %s", text)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestKeepAlive sets the simulator's session idle timeout to 1 s: a source
// whose keep-alive runs more often keeps its session through 3 s of idling,
// and one whose keep-alive is too rare loses it and logs in again.
func TestKeepAlive(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	c, _ := admin(t, srv)
	om := object.NewOptionManager(c.Client, *c.ServiceContent.Setting)
	if err := om.Update(ctx, []types.BaseOptionValue{&types.OptionValue{Key: "config.vmacore.soap.sessionTimeout", Value: "1s"}}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		every    time.Duration
		reLogins int64
	}{
		"keep-alive every 250ms": {every: 250 * time.Millisecond, reLogins: 0},
		"keep-alive every hour":  {every: time.Hour, reLogins: 1},
	}
	sources := map[string]*Source{}
	logins := map[string]int64{}
	for name, tc := range tests {
		s := newTestSource(t, blockConfig(srv, nil))
		s.keepAlive = tc.every
		before := srv.Logins()
		if _, err := observeOne(ctx, s, "DC0_H0_VM0"); err != nil {
			t.Fatal(err)
		}
		if srv.Logins() != before+1 {
			t.Fatalf("%s: %d logins for the first observation", name, srv.Logins()-before)
		}
		sources[name] = s
	}
	time.Sleep(3 * time.Second) // idle: the condition under test
	for name := range tests {
		before := srv.Logins()
		if _, err := observeOne(ctx, sources[name], "DC0_H0_VM0"); err != nil {
			t.Fatalf("%s: observe after idling: %v", name, err)
		}
		logins[name] = srv.Logins() - before
	}
	for name, tc := range tests {
		if logins[name] != tc.reLogins {
			t.Errorf("%s: %d logins after idling, want %d", name, logins[name], tc.reLogins)
		}
	}
}
