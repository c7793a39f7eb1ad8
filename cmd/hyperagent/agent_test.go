package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/agent"
	"github.com/hypersdk/hyperagent/reconcile"
)

// notifySocket is what systemd gives a Type=notify service: a unixgram
// socket in NOTIFY_SOCKET. It keeps every datagram with its arrival time.
type notifySocket struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []datagram
	cond *sync.Cond
}

type datagram struct {
	at   time.Time
	text string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, conn: c}
	n.cond = sync.NewCond(&n.mu)
	go func() {
		buf := make([]byte, 8192)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, datagram{time.Now(), string(buf[:k])})
			n.cond.Broadcast()
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// waitFor waits for a datagram after index from that starts with prefix
// and returns its index; it fails after a generous bound.
func (n *notifySocket) waitFor(t *testing.T, from int, prefix string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	go func() { time.Sleep(61 * time.Second); n.cond.Broadcast() }()
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		for i := from; i < len(n.msgs); i++ {
			if strings.HasPrefix(n.msgs[i].text, prefix) {
				return i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q datagram after #%d; got %q", prefix, from, n.texts())
		}
		n.cond.Wait()
	}
}

func (n *notifySocket) texts() []string {
	var out []string
	for _, m := range n.msgs {
		out = append(out, strings.ReplaceAll(m.text, "\n", " | "))
	}
	return out
}

func (n *notifySocket) snapshot() []datagram {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]datagram(nil), n.msgs...)
}

// agentChild is `hyperagent agent` (this test binary, fakes registered)
// running in a child process under a fake systemd.
type agentChild struct {
	*cliChild
	notify *notifySocket
	sock   string // the status API
}

func startAgent(t *testing.T, dir string, env []string, args ...string) *agentChild {
	t.Helper()
	n := newNotifySocket(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	c := startCLIEnv(t, append([]string{"HYPERAGENT_LOG=debug", "NOTIFY_SOCKET=" + n.path, "HYPERAGENT_AGENT_POLL=5ms"}, env...),
		append([]string{"agent", "-config=" + dir, "-listen=unix:" + sock}, args...)...)
	go c.stdout.drain()
	go c.stderr.drain()
	return &agentChild{cliChild: c, notify: n, sock: sock}
}

// status asks the agent's API.
func (a *agentChild) status(t *testing.T) agent.Status {
	t.Helper()
	hc := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", a.sock)
		}}}
	for i := 0; ; i++ {
		resp, err := hc.Get("http://localhost/v1/status")
		if err != nil {
			if i > 200 {
				t.Fatalf("status API: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		var s agent.Status
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// eventually polls cond until it holds (a bounded wait: a condition that
// never holds is the failure).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

func (a *agentChild) stopAndWait(t *testing.T) int {
	t.Helper()
	a.signal(t, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() {
		// Both outputs are read to the end (the process has exited)
		// before Wait closes the pipes under their readers.
		<-a.stdout.done
		<-a.stderr.done
		done <- a.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			return a.cmd.ProcessState.ExitCode()
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatalf("the agent did not stop after SIGTERM:\n%s", a.stderr.String())
		return -1
	}
}

func loadState(t *testing.T, dir string) *reconcile.State {
	t.Helper()
	st, err := readState(filepath.Join(dir, ".hyperagent"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func defined(st *reconcile.State, addrs ...string) bool {
	for _, a := range addrs {
		ms := st.Migrations[a]
		if ms == nil || ms.Domain == nil {
			return false
		}
	}
	return true
}

const agentBlock = `
agent {
  auto_apply = true
  interval   = "200ms"
  retry_min  = "100ms"
  retry_max  = "1s"
}
`

func oneMigration(name string) string {
	return fmt.Sprintf(`
migration %q {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/%s"
  export { dir = "EXPORTS" }
}
`, name, name)
}

// TestAgentLifecycle drives one agent through what systemd and people do
// to it: it starts and converges (READY, STATUS), pings the watchdog,
// picks up an edit that adds a migration, survives a broken edit (the
// last good configuration keeps running, the error is in its status), is
// reloaded by SIGHUP (RELOADING then READY), and stops on SIGTERM
// (STOPPING). The datagrams come in that order.
func TestAgentLifecycle(t *testing.T) {
	dir := fakeRepo(t, 0, agentBlock+twoMigrations)
	a := startAgent(t, dir, []string{"HYPERAGENT_AGENT_WATCHDOG=100ms"})
	ready := a.notify.waitFor(t, 0, "READY=1")
	eventually(t, "both migrations defined", func() bool {
		return defined(loadState(t, dir), `migration.web["a"]`, `migration.web["b"]`)
	})
	a.notify.waitFor(t, ready, "STATUS=2 defined")
	a.notify.waitFor(t, ready, "WATCHDOG=1")

	// An edit adding a migration is planned and applied.
	if err := os.WriteFile(filepath.Join(dir, "db.hcl"), []byte(strings.ReplaceAll(oneMigration("db"), "EXPORTS", filepath.Join(dir, "exports"))), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the added migration defined", func() bool { return defined(loadState(t, dir), "migration.db") })

	// A broken edit: the last good configuration keeps running.
	if err := os.WriteFile(filepath.Join(dir, "broken.hcl"), []byte("migration \"x\" {\n  source = \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broken edit reported", func() bool { return len(a.status(t).ConfigErrors) > 0 })
	s := a.status(t)
	if d := s.ConfigErrors[0]; !strings.HasSuffix(d.File, "broken.hcl") || d.Line == 0 {
		t.Errorf("config error %+v, want broken.hcl with a line", d)
	}
	passes := s.Passes
	eventually(t, "passes go on with the last good configuration", func() bool { return a.status(t).Passes > passes+1 })
	if got := a.status(t).Phases[reconcile.PhaseDefined]; got != 3 {
		t.Errorf("%d defined while the edit is broken, want 3", got)
	}
	// The next good edit is picked up without a restart.
	if err := os.Remove(filepath.Join(dir, "broken.hcl")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fixed configuration picked up", func() bool { return len(a.status(t).ConfigErrors) == 0 })

	// SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
	before := len(a.notify.snapshot())
	a.signal(t, syscall.SIGHUP)
	rl := a.notify.waitFor(t, before, "RELOADING=1")
	if !strings.Contains(a.notify.snapshot()[rl].text, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING without MONOTONIC_USEC: %q", a.notify.snapshot()[rl].text)
	}
	a.notify.waitFor(t, rl, "READY=1")

	before = len(a.notify.snapshot())
	if code := a.stopAndWait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, a.stderr.String())
	}
	a.notify.waitFor(t, before, "STOPPING=1")
	if held, _ := reconcile.LockHeld(filepath.Join(dir, ".hyperagent")); held {
		t.Error("the lock is held after the agent stopped")
	}
}

// TestAgentSIGHUPReloads: without file events (as on NFS) and with a long
// resync, an edit is seen only when SIGHUP says so.
func TestAgentSIGHUPReloads(t *testing.T) {
	dir := fakeRepo(t, 0, agentBlock+twoMigrations)
	a := startAgent(t, dir, []string{"HYPERAGENT_AGENT_NO_EVENTS=1"}, "-interval=1h")
	a.notify.waitFor(t, 0, "READY=1")
	eventually(t, "the first pass", func() bool { return a.status(t).Passes >= 1 })
	total := func(s agent.Status) int {
		n := 0
		for _, v := range s.Phases {
			n += v
		}
		return n
	}
	rewrite(t, dir, `toset(["a", "b"])`, `toset(["a", "b", "c"])`)
	time.Sleep(300 * time.Millisecond)
	if s := a.status(t); s.Passes != 1 || total(s) != 2 {
		t.Fatalf("the edit was seen without SIGHUP (passes %d, %d migrations)", s.Passes, total(s))
	}
	a.signal(t, syscall.SIGHUP)
	eventually(t, "the reload planned the third migration", func() bool {
		s := a.status(t)
		return s.Passes >= 2 && total(s) == 3
	})
	a.stopAndWait(t)
}

// TestAgentResyncOnly: with no file events at all, the periodic resync
// alone takes the campaign to the end.
func TestAgentResyncOnly(t *testing.T) {
	dir := fakeRepo(t, 0, agentBlock+twoMigrations)
	a := startAgent(t, dir, []string{"HYPERAGENT_AGENT_NO_EVENTS=1"})
	eventually(t, "both migrations defined by resyncs", func() bool {
		return defined(loadState(t, dir), `migration.web["a"]`, `migration.web["b"]`)
	})
	a.stopAndWait(t)
}

// TestAgentWedgedPassStopsWatchdog: a pass stuck in a step that shows no
// progress (an export that never returns) stops the watchdog pings, so
// that systemd restarts the agent; the pings went out before.
func TestAgentWedgedPassStopsWatchdog(t *testing.T) {
	dir := fakeRepo(t, 3_600_000, agentBlock+twoMigrations) // exports take an hour
	a := startAgent(t, dir, []string{"HYPERAGENT_AGENT_WATCHDOG=100ms"})
	ready := a.notify.waitFor(t, 0, "READY=1")
	a.notify.waitFor(t, ready, "WATCHDOG=1") // while the pass still shows progress
	eventually(t, "the exports started", func() bool {
		st := loadState(t, dir)
		ms := st.Migrations[`migration.web["a"]`]
		return ms != nil && ms.ExportStartedAt != nil
	})
	time.Sleep(400 * time.Millisecond) // 2 watchdog periods without progress
	from := len(a.notify.snapshot())
	time.Sleep(700 * time.Millisecond)
	for _, m := range a.notify.snapshot()[from:] {
		if m.text == "WATCHDOG=1" {
			t.Fatalf("pinged the watchdog while the pass was wedged: %q", a.notify.texts())
		}
	}
	if !strings.Contains(a.stderr.String(), "the pass shows no progress") {
		t.Errorf("no log record says why the pings stopped:\n%s", a.stderr.String())
	}
	a.stopAndWait(t)
}

// TestAgentSIGTERMMidStepThenRestart: SIGTERM while exports run stops the
// agent gracefully (exit 0, the step recorded as interrupted, the lock
// released); a new agent converges, and nothing was done twice.
func TestAgentSIGTERMMidStepThenRestart(t *testing.T) {
	dir := fakeRepo(t, 60_000, agentBlock+twoMigrations)
	a := startAgent(t, dir, nil)
	eventually(t, "the exports started", func() bool {
		st := loadState(t, dir)
		ms := st.Migrations[`migration.web["b"]`]
		return ms != nil && ms.ExportStartedAt != nil
	})
	if code := a.stopAndWait(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, a.stderr.String())
	}
	st := loadState(t, dir)
	if le := st.Migrations[`migration.web["b"]`].LastError; le == nil || !strings.HasPrefix(le.Message, "interrupted") {
		t.Errorf("last error %+v, want the interruption recorded", le)
	}
	if held, _ := reconcile.LockHeld(filepath.Join(dir, ".hyperagent")); held {
		t.Fatal("the lock is held after a graceful stop")
	}
	rewrite(t, dir, "delay_ms = 60000", "delay_ms = 0")
	b := startAgent(t, dir, nil)
	eventually(t, "converged after the restart", func() bool {
		return defined(loadState(t, dir), `migration.web["a"]`, `migration.web["b"]`)
	})
	b.stopAndWait(t)
	// The fakes' journals count every completed export and submission.
	for _, addr := range []string{`migration.web["a"]`, `migration.web["b"]`} {
		if n := countJournal(t, dir, "src-exports.log", addr); n != 1 {
			t.Errorf("%s exported %d times, want 1", addr, n)
		}
		if n := countJournal(t, dir, "conv-jobs.log", `"op":"submit"`, addr); n != 1 {
			t.Errorf("%s submitted %d times, want 1", addr, n)
		}
	}
}

// countJournal counts the lines of a fake's journal holding every s.
func countJournal(t *testing.T, dir, name string, s ...string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "fakes", name))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
lines:
	for _, l := range strings.Split(string(b), "\n") {
		for _, x := range s {
			if !strings.Contains(l, strings.ReplaceAll(x, `"`, `\"`)) && !strings.Contains(l, x) {
				continue lines
			}
		}
		n++
	}
	return n
}

// TestApplyWaitsForTheAgent: while an agent's pass holds the lock, apply
// without -lock-timeout fails naming the agent's pass; with one it waits,
// says for whom, and runs once the pass let go.
func TestApplyWaitsForTheAgent(t *testing.T) {
	dir := fakeRepo(t, 1500, `
agent {
  auto_apply = true
  interval   = "1h"
}
`+twoMigrations)
	a := startAgent(t, dir, []string{"HYPERAGENT_AGENT_NO_EVENTS=1"})
	eventually(t, "the agent's pass holds the lock", func() bool {
		info, ok, _ := reconcile.ReadLockInfo(filepath.Join(dir, ".hyperagent"))
		return ok && strings.HasPrefix(info.Operation, "agent pass")
	})
	ctx := context.Background()
	r := runCLI(t, ctx, "", false, "apply", "-auto-approve", dir)
	r.want(t, exitError)
	r.stderrHas(t, "agent pass 1 by pid")
	r = runCLI(t, ctx, "", false, "apply", "-auto-approve", "-lock-timeout=60s", dir)
	r.want(t, exitOK)
	r.stderrHas(t, "Waiting up to 1m0s for the state lock", "agent pass 1 by pid")
	a.stopAndWait(t)
}

// TestAgentSuspendResume: a suspended migration is held by the agent (and
// by apply) until resumed; the hold is in the state, so it outlives a
// restart.
func TestAgentSuspendResume(t *testing.T) {
	dir := fakeRepo(t, 0, agentBlock+twoMigrations)
	sd := filepath.Join(dir, ".hyperagent")
	ctx := context.Background()
	runCLI(t, ctx, "", false, "agent", "suspend", "-config", dir, `migration.web["b"]`).want(t, exitOK, `Suspended [migration.web["b"]]`)
	a := startAgent(t, dir, nil)
	eventually(t, "a defined", func() bool { return defined(loadState(t, dir), `migration.web["a"]`) })
	passes := a.status(t).Passes
	eventually(t, "more passes", func() bool { return a.status(t).Passes > passes+2 })
	if defined(loadState(t, dir), `migration.web["b"]`) || a.status(t).Suspended != 1 {
		t.Fatalf("the suspended migration went on (status %+v)", a.status(t))
	}
	runCLI(t, ctx, "", false, "apply", "-auto-approve", "-lock-timeout=30s", dir).want(t, exitOK)
	if defined(loadState(t, dir), `migration.web["b"]`) {
		t.Fatal("apply ran a suspended migration")
	}
	a.stopAndWait(t)
	b := startAgent(t, dir, nil)
	eventually(t, "the restarted agent's passes", func() bool { return b.status(t).Passes > 2 })
	if defined(loadState(t, dir), `migration.web["b"]`) {
		t.Fatal("the suspension did not outlive the restart")
	}
	runCLI(t, ctx, "", false, "agent", "resume", "-state-dir", sd, "-lock-timeout=30s", `migration.web["b"]`).want(t, exitOK, "Resumed")
	eventually(t, "b defined once resumed", func() bool { return defined(loadState(t, dir), `migration.web["b"]`) })
	runCLI(t, ctx, "", false, "agent", "suspend", "-state-dir", sd, "-lock-timeout=30s", "-all").want(t, exitOK, "the whole campaign")
	if st := loadState(t, dir); st.SuspendedAll == nil {
		t.Error("suspend -all not recorded")
	}
	r := runCLI(t, ctx, "", false, "agent", "resume", "-state-dir", sd, "-lock-timeout=30s", `migration.web["a"]`)
	r.want(t, exitError)
	r.stderrHas(t, "resume it with -all")
	b.stopAndWait(t)
}

// TestAgentEmptyCampaign: a repo with no migrations yet is a valid, idle
// campaign; the status API is served where the agent block says.
func TestAgentEmptyCampaign(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(t.TempDir(), "status.sock")
	hcl := fmt.Sprintf("agent {\n  interval      = \"100ms\"\n  status_socket = %q\n}\n", sock)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newNotifySocket(t)
	cmd := exec.Command(os.Args[0], "agent", "-config="+dir)
	cmd.Env = append(os.Environ(), fakesEnv+"=1", "NOTIFY_SOCKET="+n.path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agentChild{cliChild: &cliChild{cmd: cmd}, notify: n, sock: sock}
	a.notify.waitFor(t, 0, "READY=1")
	eventually(t, "idle passes", func() bool { s := a.status(t); return s.Passes >= 3 && s.LastError == "" })
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("status socket: %v, mode %v; want 0660", err, fi.Mode().Perm())
	}
	a.notify.waitFor(t, 0, "STATUS=no migrations")
	a.signal(t, syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}
