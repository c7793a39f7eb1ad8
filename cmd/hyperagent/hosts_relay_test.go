package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
	"github.com/jackc/pgx/v5"
)

// pgRelay serves PostgreSQL on a unix socket for one host: a process in
// a network namespace of its own (no route to the tests' server) reaches
// the database through it, as a host through its network. Each
// connection is relayed to the tests' server over TCP; when the host's
// side closes (the host died), the server's side is closed too, and the
// server ends the session, unless the relay holds it: then the server
// sees the host only when Release closes it, as a server notices a host
// gone with the network a while after.
type pgRelay struct {
	dir string // the socket is dir/.s.PGSQL.5432
	ln  net.Listener

	mu      sync.Mutex
	hold    bool
	held    []net.Conn
	servers map[net.Conn]bool
}

// newPGRelay relays to the server cs names; ConnStr is what the host uses.
func newPGRelay(t testing.TB, cs string) *pgRelay {
	t.Helper()
	cfg, err := pgx.ParseConfig(cs)
	if err != nil {
		t.Fatal(err)
	}
	server := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	dir, err := os.MkdirTemp("", "pgrelay")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	r := &pgRelay{dir: dir, ln: ln, servers: map[net.Conn]bool{}}
	t.Cleanup(func() {
		ln.Close()
		r.Release()
		r.mu.Lock()
		for c := range r.servers {
			c.Close()
		}
		r.mu.Unlock()
		os.RemoveAll(dir)
	})
	pgtest.Relay(ln, server, func(c, s net.Conn) {
		r.mu.Lock()
		r.servers[s] = true
		r.mu.Unlock()
		go r.pipe(c, s)
	})
	return r
}

// pipe copies both ways until the host's side ends.
func (r *pgRelay) pipe(host, server net.Conn) {
	go func() {
		_, _ = io.Copy(host, server)
		host.Close()
	}()
	_, _ = io.Copy(server, host)
	host.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hold {
		r.held = append(r.held, server)
		return
	}
	delete(r.servers, server)
	server.Close()
}

// ConnStr is the connection string of the host behind this relay.
func (r *pgRelay) ConnStr(t testing.TB, cs string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(cs)
	if err != nil {
		t.Fatal(err)
	}
	return "host=" + r.dir + " port=5432 user=" + cfg.User + " password=" + cfg.Password + " dbname=" + cfg.Database + " sslmode=disable"
}

// Hold keeps the server's side of connections whose host side ends open
// until Release.
func (r *pgRelay) Hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hold = true
}

// Release closes what Hold kept: the server ends those sessions.
func (r *pgRelay) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hold = false
	for _, s := range r.held {
		delete(r.servers, s)
		s.Close()
	}
	r.held = nil
}
