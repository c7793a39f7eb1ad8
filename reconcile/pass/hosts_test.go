package pass

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
	"github.com/hypersdk/hyperagent/schema"
)

// Several hosts in one process: each a Workspace with its own state
// store (its own database session, so its own lock, claims and slots),
// all on one PostgreSQL workspace, and all calling the same plugin
// instances, so that the fakes' counts and high-water marks are of the
// whole campaign.

// sharedRegistry is the fakes' registry, making one instance of each
// plugin block for every workspace opened with it.
func sharedRegistry() *plugins.Registry {
	var mu sync.Mutex
	made := map[string]any{}
	var fs []plugins.Factory
	for _, f := range plugintest.Factories() {
		inner := f.New
		f.New = func(ctx context.Context, req plugins.NewRequest) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			if p, ok := made[req.Addr.String()]; ok {
				return p, nil
			}
			p, err := inner(ctx, req)
			if err == nil {
				made[req.Addr.String()] = p
			}
			return p, err
		}
		fs = append(fs, f)
	}
	return plugins.NewRegistry(fs...)
}

// pgWorld adds a state block keeping dir's state in workspace ws of the
// tests' database; the connection string is the variable pg.
func pgWorld(t testing.TB, dir, ws string) {
	t.Helper()
	hcl := fmt.Sprintf("variable \"pg\" {\n  sensitive = true\n}\nstate {\n  backend   = \"pg\"\n  conn_str  = var.pg\n  workspace = %q\n}\n", ws)
	if err := os.WriteFile(filepath.Join(dir, "state.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
}

// openHost opens dir as one more host.
func openHost(t testing.TB, dir, cs string, reg *plugins.Registry) *Workspace {
	t.Helper()
	cfg, _, diags := schema.Load(schema.LoadOptions{Dir: dir, Vars: []string{"pg=" + cs}, Plugins: reg.Schemas()})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	w, err := Open(context.Background(), OpenRequest{Config: cfg, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	w.PollInterval = time.Millisecond
	t.Cleanup(func() { w.Close() })
	return w
}

// stepLog orders the steps of every host.
type stepLog struct {
	mu     sync.Mutex
	events []hostEvent
}

type hostEvent struct {
	host int
	reconcile.Event
}

func (l *stepLog) add(host int, ev reconcile.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, hostEvent{host, ev})
}

// first is the index of the first event matching, -1 when none.
func (l *stepLog) first(addr string, step reconcile.StepKind, status string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.events {
		if e.Address == addr && e.Step == step && e.Status == status {
			return i
		}
	}
	return -1
}

// runHost applies passes on w until one plans nothing, pausing after a
// pass that found every change another's. It returns how many
// migrations its passes completed.
func runHost(ctx context.Context, w *Workspace, host int, log *stepLog) (migrated int, err error) {
	for passes := 0; ; passes++ {
		if passes > 500 {
			return migrated, fmt.Errorf("host %d: still changes after %d passes", host, passes)
		}
		res, err := w.Run(ctx, Request{Mode: ModeApply, Operation: fmt.Sprintf("host %d pass %d", host, passes),
			Plan: reconcile.PlanRequest{Refresh: true}, LockTimeout: 30 * time.Second,
			Apply: reconcile.ApplyOptions{Events: func(ev reconcile.Event) { log.add(host, ev) }}})
		if err != nil {
			return migrated, fmt.Errorf("host %d: %w", host, err)
		}
		if res.Applied == nil {
			return migrated, nil
		}
		a := res.Applied
		if !a.OK() {
			return migrated, fmt.Errorf("host %d: apply %+v", host, a)
		}
		migrated += len(a.Migrated)
		if len(a.Migrated) == 0 {
			time.Sleep(20 * time.Millisecond) // the others are at work
		}
	}
}

// TestHostsShareOneCampaign: three hosts apply one campaign of twelve
// migrations at once. Each migration is exported, submitted and
// defined exactly once, by one host; the work is spread; the source's,
// converter's and target's limits hold across the hosts (the fakes'
// high-water marks); dependents start only once their dependency is
// defined; and the state holds every host's records.
func TestHostsShareOneCampaign(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	dir := t.TempDir()
	writeWorld(t, dir, worldHCL(dir, map[string]string{
		"source":    "  max_parallel = 2\n  delay_ms = 40\n",
		"converter": "  max_parallel = 3\n  delay_ms = 1\n  rounds = 30\n",
		"target":    "  max_parallel = 1\n  delay_ms = 5\n",
	}, "db", `app depends_on = [migration.db]
  for_each = toset(["a", "b"])`, `vm for_each = toset(["0", "1", "2", "3", "4", "5", "6", "7", "8"])`))
	pgWorld(t, dir, pgtest.Workspace(t, cs))
	reg := sharedRegistry()
	const hosts = 3
	ws := make([]*Workspace, hosts)
	for i := range ws {
		ws[i] = openHost(t, dir, cs, reg)
	}
	log := &stepLog{}
	var wg sync.WaitGroup
	did := make([]int, hosts)
	errs := make([]error, hosts)
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			did[i], errs[i] = runHost(t.Context(), w, i, log)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	src, conv, tgt := fakes(ws[0])
	busy := 0
	for _, n := range did {
		if n > 0 {
			busy++
		}
	}
	if busy < 2 || did[0]+did[1]+did[2] != 12 {
		t.Errorf("hosts migrated %v; want 12 in all, by more than one host", did)
	}
	for _, m := range ws[0].Config.Migrations {
		a := m.Addr.String()
		if e, s, d := src.Exports(a), conv.Submits(a), tgt.Defines(a); e != 1 || s != 1 || d != 1 {
			t.Errorf("%s: %d exports, %d submissions, %d definitions; want one each", a, e, s, d)
		}
	}
	// Without the limits, this campaign reaches 3 exports and 7 jobs at
	// once.
	if s, c, d := src.HighWater(), conv.HighWater(), tgt.HighWater(); s > 2 || c > 3 || d > 1 {
		t.Errorf("high-water marks: %d exports (limit 2), %d jobs (limit 3), %d definitions (limit 1); want within the limits", s, c, d)
	}
	dbDefined := log.first("migration.db", reconcile.StepDefine, "done")
	for _, app := range []string{`migration.app["a"]`, `migration.app["b"]`} {
		if start := log.first(app, reconcile.StepExport, "start"); dbDefined < 0 || start < dbDefined {
			t.Errorf("%s began its export (event %d) before migration.db was defined (event %d)", app, start, dbDefined)
		}
	}
	st, err := ws[1].Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ws[0].Config.Migrations {
		if ms := st.Migrations[m.Addr.String()]; ms == nil || ms.Domain == nil || ms.JobSlot() != "" {
			t.Errorf("%s in state: %+v; want defined, its job ended", m.Addr, ms)
		}
	}
}

// TestHostLosesItsSession: a host is cut off from the database (its
// session ended by the server, as when it dies or its network goes)
// while it awaits three jobs and exports three more. It notices, stops
// and reports why; another host takes all six over from their last
// recorded steps: the three jobs are awaited, not submitted again, the
// three exports are done once, and everything is defined once.
func TestHostLosesItsSession(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	dir := t.TempDir()
	writeWorld(t, dir, worldHCL(dir, map[string]string{"converter": "  rounds = 200\n"},
		`vm for_each = toset(["0", "1", "2", "3", "4", "5"])`))
	pgWorld(t, dir, pgtest.Workspace(t, cs))
	reg := sharedRegistry()
	a, b := openHost(t, dir, cs, reg), openHost(t, dir, cs, reg)
	a.PollInterval, a.SessionCheck = 10*time.Millisecond, 20*time.Millisecond
	src, conv, tgt := fakes(a)
	gate := make(chan struct{})
	src.Gate = gate
	log := &stepLog{}
	done := make(chan error, 1)
	go func() {
		_, err := a.Run(t.Context(), Request{Mode: ModeApply, Operation: "host a pass 1", Plan: reconcile.PlanRequest{Refresh: true},
			Apply: reconcile.ApplyOptions{Events: func(ev reconcile.Event) { log.add(0, ev) }}})
		done <- err
	}()
	for range 3 {
		gate <- struct{}{}
	}
	count := func(step reconcile.StepKind, status string) int {
		log.mu.Lock()
		defer log.mu.Unlock()
		n := 0
		for _, e := range log.events {
			if e.Step == step && e.Status == status {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); count(reconcile.StepAwait, "start") < 3 || count(reconcile.StepExport, "start") < 6; {
		if time.Now().After(deadline) {
			t.Fatalf("host a did not reach three awaits and six exports: %+v", log.events)
		}
		time.Sleep(5 * time.Millisecond)
	}
	terminate(t, cs, "host a pass 1")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "session") {
			t.Fatalf("host a's pass after its session ended: %v; want it stopped, saying why", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("host a went on working after its session ended")
	}
	if n := count(reconcile.StepDefine, "done"); n != 0 {
		t.Fatalf("host a defined %d domains before it was cut off; the test wants it cut off mid-run", n)
	}
	close(gate)
	b.PollInterval = time.Millisecond
	if _, err := runHost(t.Context(), b, 1, log); err != nil {
		t.Fatal(err)
	}
	for _, m := range b.Config.Migrations {
		addr := m.Addr.String()
		if e, s, d := src.Exports(addr), conv.Submits(addr), tgt.Defines(addr); e != 1 || s != 1 || d != 1 {
			t.Errorf("%s: %d exports, %d submissions, %d definitions; want one each", addr, e, s, d)
		}
	}
}

// terminate ends, as the server does for a host it lost, the session
// of the pass holding the campaign's lock for op.
func terminate(t *testing.T, cs, op string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), cs)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ended bool
	if err := conn.QueryRow(t.Context(), `SELECT pg_terminate_backend(session_pid, 5000) FROM hyperagent_holders WHERE operation = $1`, op).
		Scan(&ended); err != nil || !ended {
		t.Fatalf("ending the session of %q: %v, %v", op, ended, err)
	}
}
