package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

func TestRetriesBackOffAndForget(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := newRetries(func() time.Time { return now })
	r.bounds(time.Second, 8*time.Second)
	cfg := &schema.Config{Migrations: []*schema.Migration{{Addr: addrs.Migration{Name: "a"}, Digest: "d1"}}}
	p := &reconcile.Plan{Fingerprints: map[string]string{"migration.a": "v1"}}
	c := &reconcile.Change{Address: "migration.a"}
	fail := &reconcile.Result{Failed: []reconcile.Failure{{Address: "migration.a", Step: reconcile.StepExport, Error: "connection refused"}}}

	var waits []time.Duration
	for range 5 {
		r.record(cfg, p, fail)
		why, held := r.hold(cfg)(p, c)
		if !held || !strings.Contains(why, "connection refused") {
			t.Fatalf("held %v (%q), want held with the error", held, why)
		}
		waits = append(waits, r.due().Sub(now))
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] && waits[i-1] < 7*time.Second {
			t.Errorf("waits %v: not growing", waits)
		}
	}
	if last := waits[len(waits)-1]; last > 9*time.Second || last < 7*time.Second {
		t.Errorf("waits %v: want capped near 8s", waits)
	}
	now = now.Add(time.Minute)
	if _, held := r.hold(cfg)(p, c); held {
		t.Error("still held after its wait")
	}
	r.record(cfg, p, &reconcile.Result{Migrated: []string{"migration.a"}})
	if len(r.status()) != 0 {
		t.Error("a success did not forget the migration")
	}
}

func TestTerminalWaitsForAChange(t *testing.T) {
	now := time.Now()
	r := newRetries(func() time.Time { return now })
	r.bounds(time.Second, time.Minute)
	m := &schema.Migration{Addr: addrs.Migration{Name: "a"}, Digest: "d1"}
	cfg := &schema.Config{Migrations: []*schema.Migration{m}}
	p := &reconcile.Plan{Fingerprints: map[string]string{"migration.a": "v1"}}
	c := &reconcile.Change{Address: "migration.a"}
	r.record(cfg, p, &reconcile.Result{Failed: []reconcile.Failure{{Address: "migration.a", Step: reconcile.StepDefine,
		Error: "domain exists", Terminal: true}}})
	now = now.Add(24 * time.Hour)
	if _, held := r.hold(cfg)(p, c); !held {
		t.Fatal("a terminal failure was retried with nothing changed")
	}
	if !r.due().IsZero() {
		t.Error("a terminal failure set a retry time")
	}
	// The VM changed: released.
	p2 := &reconcile.Plan{Fingerprints: map[string]string{"migration.a": "v2"}}
	if _, held := r.hold(cfg)(p2, c); held {
		t.Error("still held after the source VM changed")
	}
	// Again, then the configuration changes: released.
	r.record(cfg, p, &reconcile.Result{Failed: []reconcile.Failure{{Address: "migration.a", Step: reconcile.StepDefine, Terminal: true}}})
	m.Digest = "d2"
	if _, held := r.hold(cfg)(p, c); held {
		t.Error("still held after the configuration changed")
	}
}

func TestStatusLine(t *testing.T) {
	s := Status{Phases: map[reconcile.Phase]int{reconcile.PhaseDefined: 12, reconcile.PhaseConverting: 3, reconcile.PhaseFailed: 1},
		OutOfSync: 2, AutoApply: false}
	if got, want := s.Line(), "12 defined, 3 converting, 1 failed; 2 to apply (auto_apply is off)"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
	if got := (Status{}).Line(); got != "no migrations" {
		t.Errorf("empty: %q", got)
	}
}
