package vcsimtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Options shape the simulated inventory and its login.
type Options struct {
	// Machine is the number of VMs per resource pool; the VPX model has two
	// pools (a standalone host's and a cluster's), so the inventory holds
	// 2*Machine VMs. Zero keeps the model's default (2, so 4 VMs).
	Machine int
	// Datacenter is the number of datacenters; zero keeps the default (1).
	Datacenter int
	Username   string // default "alice"
	Password   string // default "s3cret"
	// Listen is host:port to listen on; "" picks a free loopback port.
	Listen string
}

// Server is a running vCenter simulator with hyperagent's extensions:
// ExportVm on VMs made exportable, OvfManager.CreateDescriptor, a record of
// NFC lease completions and aborts, and a login check that counts logins.
type Server struct {
	Model  *simulator.Model
	Server *simulator.Server
	// URL is the SDK URL without user information.
	URL        *url.URL
	Username   string
	Password   string
	Thumbprint string // SHA-1 of the server certificate, colon hex
	Leases     *LeaseLog

	logins atomic.Int64
	nfc    nfcState
	stop   chan struct{} // closed by Close: releases stalled NFC responses
	mu     sync.Mutex
	ignore map[types.ManagedObjectReference]bool
	calls  map[types.ManagedObjectReference][]string
}

// Start builds the inventory and serves it over TLS. Building costs about
// 50 ms per VM; keep Machine small in unit tests.
func Start(opts Options) (*Server, error) {
	if opts.Username == "" {
		opts.Username = "alice"
	}
	if opts.Password == "" {
		opts.Password = "s3cret"
	}
	m := simulator.VPX()
	if opts.Machine > 0 {
		m.Machine = opts.Machine
	}
	if opts.Datacenter > 0 {
		m.Datacenter = opts.Datacenter
	}
	if err := m.Create(); err != nil {
		return nil, fmt.Errorf("vcsim: create model: %w", err)
	}
	s := &Server{Model: m, Username: opts.Username, Password: opts.Password, Leases: newLeaseLog(), stop: make(chan struct{})}
	s.nfc.files, s.nfc.served = map[string]map[string]nfcFile{}, map[string]map[string]bool{}
	m.Service.TLS = new(tls.Config)
	m.Service.Listen = &url.URL{Host: opts.Listen, User: url.UserPassword(opts.Username, opts.Password)}
	m.Map().SessionManager().ValidLogin = func(req *types.Login) bool {
		s.logins.Add(1)
		return req.UserName == s.Username && req.Password == s.Password
	}
	m.Map().Put(&OvfManager{OvfManager: m.Map().Get(*m.ServiceContent.OvfManager).(*simulator.OvfManager)})
	// More specific than vcsim's "/nfc/", so NFC requests come here first.
	if m.Service.ServeMux == nil {
		m.Service.ServeMux = http.NewServeMux()
	}
	m.Service.ServeMux.HandleFunc("/nfc/{lease}/{name}", s.serveNFC)
	s.Server = m.Service.NewServer()
	u := *s.Server.URL
	u.User = nil
	s.URL = &u
	s.Thumbprint = soap.ThumbprintSHA1(s.Server.Certificate())
	return s, nil
}

// Close stops serving and removes the model's temporary files.
func (s *Server) Close() {
	close(s.stop)
	s.Server.Close()
	s.Model.Remove()
}

// Service is the simulator service, for fault rules.
func (s *Server) Service() *simulator.Service { return s.Model.Service }

// Logins counts login attempts, successful or not.
func (s *Server) Logins() int64 { return s.logins.Load() }

// Client logs in as the configured user, for test setup through the API.
func (s *Server) Client(ctx context.Context) (*govmomi.Client, error) {
	u := *s.URL
	u.User = url.UserPassword(s.Username, s.Password)
	return govmomi.NewClient(ctx, &u, true)
}

// GovcURL is the URL with user information, as GOVC_URL expects it.
func (s *Server) GovcURL() string {
	u := *s.URL
	u.User = url.UserPassword(s.Username, s.Password)
	return u.String()
}
