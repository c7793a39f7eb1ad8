package libvirt

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// libvirt's remote procedure numbers (remote_protocol.x) the proxy acts on.
const (
	procConnectListAllDomains  = 273
	procConnectListAllNetworks = 283
	procDomainDefineXMLFlags   = 350
)

// flakyProxy stands between a target and the real libvirtd and behaves as
// a daemon that is restarting would: while down, its socket exists and
// refuses connections; once up, it drops or cuts the connections its
// script names, in the order they are accepted, and forwards the rest.
type flakyProxy struct {
	t        *testing.T
	path     string
	upstream string
	fd       int // bound, listening only once up

	mu       sync.Mutex
	script   []cut
	accepted int
	calls    map[uint32]int // procedure -> calls forwarded to the daemon
	conns    []net.Conn
	ln       net.Listener
}

// cut is what the proxy does to one connection; the zero cut forwards.
type cut struct {
	atAccept   bool   // close it at once, as a daemon going down does
	beforeCall uint32 // close it when the client calls this procedure, before the daemon sees the call
	afterCall  uint32 // forward the call to this procedure, then close it instead of passing on the answer
}

// newFlakyProxy returns a proxy that is down until start.
func newFlakyProxy(t *testing.T) *flakyProxy {
	t.Helper()
	p := &flakyProxy{t: t, path: filepath.Join(t.TempDir(), "flaky.sock"), upstream: daemonSocket(t), calls: map[uint32]int{}}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: p.path}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	p.fd = fd
	t.Cleanup(p.close)
	return p
}

// daemonSocket is the real libvirtd's socket.
func daemonSocket(t *testing.T) string {
	for _, s := range socketCandidates(testURI, "") {
		if fi, err := os.Stat(s); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return s
		}
	}
	t.Fatal("no libvirtd socket (run .ci/setup as root)")
	return ""
}

// start brings the proxy up: it listens, and treats the next connections
// as script says.
func (p *flakyProxy) start(script ...cut) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.script = script
	if err := syscall.Listen(p.fd, 64); err != nil {
		p.t.Errorf("listen: %v", err)
		return
	}
	f := os.NewFile(uintptr(p.fd), p.path)
	ln, err := net.FileListener(f)
	f.Close()
	p.fd = -1
	if err != nil {
		p.t.Errorf("listener: %v", err)
		return
	}
	p.ln = ln
	go p.accept(ln)
}

func (p *flakyProxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		var k cut
		if p.accepted < len(p.script) {
			k = p.script[p.accepted]
		}
		p.accepted++
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		if k.atAccept {
			c.Close()
			continue
		}
		go p.serve(c, k)
	}
}

// serve forwards packets both ways, reading each whole (a 4-byte length,
// then a header naming the procedure and the serial) to act on its cut.
func (p *flakyProxy) serve(c net.Conn, k cut) {
	up, err := net.Dial("unix", p.upstream)
	if err != nil {
		p.t.Errorf("proxy: dial libvirtd: %v", err)
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, up)
	p.mu.Unlock()
	closeBoth := sync.OnceFunc(func() { c.Close(); up.Close() })
	defer closeBoth()
	var awaited atomic.Int64 // serial of the call whose answer is lost
	awaited.Store(-1)
	go func() {
		defer closeBoth()
		for {
			pkt, err := readPacket(c)
			if err != nil {
				return
			}
			proc, serial := packetCall(pkt)
			if k.beforeCall != 0 && proc == k.beforeCall {
				return
			}
			if k.afterCall != 0 && proc == k.afterCall {
				awaited.Store(int64(serial))
			}
			p.mu.Lock()
			p.calls[proc]++
			p.mu.Unlock()
			if _, err := up.Write(pkt); err != nil {
				return
			}
		}
	}()
	for {
		pkt, err := readPacket(up)
		if err != nil {
			return
		}
		if proc, serial := packetCall(pkt); proc == k.afterCall && int64(serial) == awaited.Load() {
			return
		}
		if _, err := c.Write(pkt); err != nil {
			return
		}
	}
}

func readPacket(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size < 28 || size > 64<<20 {
		return nil, fmt.Errorf("packet of %d bytes", size)
	}
	pkt := make([]byte, size)
	copy(pkt, n[:])
	_, err := io.ReadFull(r, pkt[4:])
	return pkt, err
}

// packetCall reads the procedure and serial from a packet's header:
// length, program, version, procedure, type, serial, status.
func packetCall(pkt []byte) (proc, serial uint32) {
	return binary.BigEndian.Uint32(pkt[12:16]), binary.BigEndian.Uint32(pkt[20:24])
}

// counts says how many connections were accepted and how many calls to
// proc reached the daemon.
func (p *flakyProxy) counts(proc uint32) (accepted, calls int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.calls[proc]
}

func (p *flakyProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd >= 0 {
		syscall.Close(p.fd)
	}
	if p.ln != nil {
		p.ln.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
}

// retryLog collects the target's retry notices.
type retryLog struct {
	ch chan string
	mu sync.Mutex
	n  int
}

func newRetryLog() *retryLog { return &retryLog{ch: make(chan string, 1000)} }

func (r *retryLog) Accept(_ string, _ hclog.Level, msg string, args ...interface{}) {
	if msg != "libvirt did not answer; retrying" {
		return
	}
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	select {
	case r.ch <- fmt.Sprint(args...):
	default:
	}
}

func (r *retryLog) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// next returns the next notice, or false when none came in time or stop
// was closed.
func (r *retryLog) next(stop <-chan struct{}) (string, bool) {
	select {
	case s := <-r.ch:
		return s, true
	case <-stop:
	case <-time.After(30 * time.Second):
	}
	return "", false
}

// newProxiedTarget is a target that reaches libvirtd through cfg.Socket,
// logs its retries to rl and waits little between them.
func newProxiedTarget(t *testing.T, cfg Config, rl *retryLog) *Target {
	t.Helper()
	log := hclog.NewInterceptLogger(&hclog.LoggerOptions{Output: io.Discard})
	log.RegisterSink(rl)
	tg, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	tg.conn.retry = retryPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, MaxElapsed: 20 * time.Second}
	t.Cleanup(func() { tg.Close() })
	return tg
}
