package pass

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pgstate"
	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
)

// BenchmarkPlan10kBackends is a plan pass (lock, load, observe through
// the file-backed fakes, diff, unlock) of 10,000 migrations whose state
// records all of them, on the local backend and on PostgreSQL in turn,
// in one run. It reports each backend's time per pass and their ratio.
func BenchmarkPlan10kBackends(b *testing.B) {
	const n = 10000
	cs := pgtest.ConnStr(b, os.Getenv)
	dir := b.TempDir()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%q", fmt.Sprintf("%05d", i))
	}
	writeWorld(b, dir, worldHCL(dir, nil, "vm for_each = toset(["+strings.Join(keys, ", ")+"])"))
	w := mustOpen(b, dir)
	local := w.Store
	pg, err := pgstate.NewStore(cs, pgtest.Workspace(b, cs))
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	now := time.Now().UTC()
	st := reconcile.NewState()
	for _, m := range w.Config.Migrations {
		a := m.Addr.String()
		st.Migrations[a] = &reconcile.MigrationState{Address: a, Source: m.Source.String(), Converter: m.Converter.String(),
			Target: m.Target.String(), VM: m.VM, Digests: reconcile.Digests(m), CreatedAt: now, UpdatedAt: now}
	}
	for _, s := range []*reconcile.Store{local, pg} {
		if _, err := s.Lock("bench"); err != nil {
			b.Fatal(err)
		}
		if err := s.Write(st.Clone()); err != nil {
			b.Fatal(err)
		}
		if err := s.Unlock(); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	pass := func(s *reconcile.Store) time.Duration {
		w.Store = s
		start := time.Now()
		res, err := w.Run(ctx, Request{Mode: ModePlan, Operation: "plan", Plan: reconcile.PlanRequest{Refresh: true}})
		if err != nil || res.Plan.Summary.Migrate != n {
			b.Fatalf("plan: %v, %+v", err, res.Plan.Summary)
		}
		return time.Since(start)
	}
	// One step's write, as apply makes after every step: one record
	// changed of the 10,000, the state loaded under the lock.
	step := func(s *reconcile.Store) (load, write time.Duration) {
		if _, err := s.Lock("bench"); err != nil {
			b.Fatal(err)
		}
		defer s.Unlock()
		start := time.Now()
		st, err := s.Load()
		if err != nil {
			b.Fatal(err)
		}
		load = time.Since(start)
		st.Migrations[w.Config.Migrations[0].Addr.String()].UpdatedAt = time.Now().UTC()
		start = time.Now()
		if err := s.Write(st); err != nil {
			b.Fatal(err)
		}
		return load, time.Since(start)
	}
	var tl, tp, ll, lp, wl, wp time.Duration
	b.ResetTimer()
	for b.Loop() {
		tl += pass(local)
		tp += pass(pg)
		ld, wr := step(local)
		ll, wl = ll+ld, wl+wr
		ld, wr = step(pg)
		lp, wp = lp+ld, wp+wr
	}
	w.Store = local
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(tl), "local-plan-ms")
	b.ReportMetric(ms(tp), "pg-plan-ms")
	b.ReportMetric(float64(tp)/float64(tl), "pg/local-plan")
	b.ReportMetric(ms(ll), "local-load-ms")
	b.ReportMetric(ms(lp), "pg-load-ms")
	b.ReportMetric(ms(wl), "local-write-ms")
	b.ReportMetric(ms(wp), "pg-write-ms")
}
