package vsphere

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

var govcEnv = []string{"GOVC_URL", "GOVC_USERNAME", "GOVC_PASSWORD", "GOVC_INSECURE", "GOVC_THUMBPRINT", "GOVC_DATACENTER", "GOVC_TLS_CA_CERTS"}

// clearGovcEnv keeps the developer's govc environment out of the tests.
func clearGovcEnv(t *testing.T) {
	t.Helper()
	for _, k := range govcEnv {
		t.Setenv(k, "")
	}
}

func startSim(t *testing.T, opts vcsimtest.Options) *vcsimtest.Server {
	t.Helper()
	srv, err := vcsimtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// blockConfig is a source block's attributes as the schema layer hands them
// over; attrs overrides or adds.
func blockConfig(srv *vcsimtest.Server, attrs map[string]cty.Value) cty.Value {
	m := map[string]cty.Value{
		"url":                  cty.StringVal(srv.URL.String()),
		"username":             cty.StringVal(srv.Username),
		"password":             cty.StringVal(srv.Password),
		"datacenter":           cty.NullVal(cty.String),
		"thumbprint":           cty.StringVal(srv.Thumbprint),
		"ca_file":              cty.NullVal(cty.String),
		"insecure":             cty.False,
		"max_parallel_exports": cty.NumberIntVal(4),
		"max_parallel_disks":   cty.NumberIntVal(2),
	}
	for k, v := range attrs {
		m[k] = v
	}
	return cty.ObjectVal(m)
}

// newSource builds a source through the registered factory, as the engine
// does.
func newTestSource(t *testing.T, cfg cty.Value) *Source {
	t.Helper()
	clearGovcEnv(t)
	return buildSource(t, cfg)
}

func buildSource(t *testing.T, cfg cty.Value) *Source {
	t.Helper()
	f := Factory()
	v, err := f.New(context.Background(), plugins.NewRequest{
		Addr:   addrs.Plugin{Kind: addrs.KindSource, Type: Type, Name: "test"},
		Config: cfg,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "vsphere", Output: testWriter{t}, Level: hclog.Debug}),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := v.(*Source)
	testDefaults(s)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// admin is a separate session for arranging the simulator.
func admin(t *testing.T, srv *vcsimtest.Server) (*govmomi.Client, *find.Finder) {
	t.Helper()
	ctx := context.Background()
	c, err := srv.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Logout(context.Background()) })
	f := find.NewFinder(c.Client)
	dc, err := f.DefaultDatacenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	return c, f
}

func findVM(t *testing.T, f *find.Finder, p string) *object.VirtualMachine {
	t.Helper()
	vm, err := f.VirtualMachine(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// counter counts HTTP round trips of the SOAP client.
type counter struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func countRoundTrips(s *Source) *counter {
	c := &counter{}
	s.wrapTransport = func(rt http.RoundTripper) http.RoundTripper { c.rt = rt; return c }
	return c
}

// bigSim is one simulator with many VMs shared by the read-only tests: the
// simulator builds about 20 VMs a second.
var bigSim struct {
	once sync.Once
	srv  *vcsimtest.Server
	err  error
}

const bigMachines = 150 // per pool: 300 VMs

func sharedBigSim(t *testing.T) *vcsimtest.Server {
	t.Helper()
	bigSim.once.Do(func() { bigSim.srv, bigSim.err = vcsimtest.Start(vcsimtest.Options{Machine: bigMachines}) })
	if bigSim.err != nil {
		t.Fatal(bigSim.err)
	}
	return bigSim.srv
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(serveChild())
	}
	code := m.Run()
	if bigSim.srv != nil {
		bigSim.srv.Close()
	}
	benchSims.Range(func(_, v any) bool {
		v.(*vcsimtest.Server).Close()
		return true
	})
	os.Exit(code)
}
