package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

// TestConversionProgress: the figures a converter reports of a job show
// as the migration's bytes while it is queued or converting, with a rate
// and an ETA; figures of another job (an earlier attempt) are not its
// job's; a job without figures shows its elapsed time only. converting
// lists the jobs whose figures to read, by converter.
func TestConversionProgress(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l := newLive(func() time.Time { return now }, func(s string) string { return s })
	sub := now.Add(-time.Minute)
	l.planned(&reconcile.Plan{Changes: []reconcile.Change{
		{Address: "migration.a", Action: reconcile.ActionCreate, Phase: reconcile.PhasePending, Converter: "converter.x.y"},
		{Address: "migration.b", Action: reconcile.ActionCreate, Phase: reconcile.PhaseConverting, Converter: "converter.x.y"},
		{Address: "migration.c", Action: reconcile.ActionCreate, Phase: reconcile.PhaseQueued, Converter: "converter.x.z"},
		{Address: "migration.d", Action: reconcile.ActionNoOp, Phase: reconcile.PhaseDefined, Converter: "converter.x.y"},
	}})
	l.record(&reconcile.State{Migrations: map[string]*reconcile.MigrationState{
		"migration.b": {Job: &reconcile.JobRecord{ID: "b-a2", Attempt: 2, Converter: "converter.x.y", SubmittedAt: &sub}},
		"migration.c": {Job: &reconcile.JobRecord{ID: "c-a1", Attempt: 1, Converter: "converter.x.z", SubmittedAt: &sub}},
		"migration.d": {Job: &reconcile.JobRecord{ID: "d-a1", Attempt: 1, Converter: "converter.x.y", SubmittedAt: &sub}},
	}})
	want := map[string][]plugins.JobQuery{
		"converter.x.y": {{Address: "migration.b", JobID: "b-a2", SubmittedAt: sub}},
		"converter.x.z": {{Address: "migration.c", JobID: "c-a1", SubmittedAt: sub}},
	}
	if diff := cmp.Diff(want, l.converting()); diff != "" {
		t.Errorf("converting (-want +got):\n%s", diff)
	}
	view := func(addr string) *Progress {
		for _, m := range l.migrations(nil) {
			if m.Address == addr {
				return m.Progress
			}
		}
		t.Fatalf("no %s", addr)
		return nil
	}
	if p := view("migration.b"); p == nil || p.Bytes != nil {
		t.Errorf("before any figures: %+v, want the elapsed time only", p)
	}
	l.conversion(plugins.ProgressEvent{Address: "migration.b", Item: plugins.ConversionItem("b-a2"), Done: 100, Total: 1000})
	now = now.Add(2 * time.Second)
	l.conversion(plugins.ProgressEvent{Address: "migration.b", Item: plugins.ConversionItem("b-a2"), Done: 500, Total: 1000})
	p := view("migration.b")
	if p == nil || p.Bytes == nil || p.ElapsedSeconds != 62 {
		t.Fatalf("progress %+v: want figures, 62 s since submitted", p)
	}
	if b := p.Bytes; b.Done != 500 || b.Total != 1000 || b.RateBytesPerSecond != 200 || b.ETASeconds == nil || *b.ETASeconds != 2.5 {
		t.Errorf("bytes %+v (eta %v), want 500 of 1000 at 200/s, 2.5 s left", b, b.ETASeconds)
	}
	if p := view("migration.c"); p == nil || p.Bytes != nil {
		t.Errorf("a job without figures (the daemon's): %+v, want the elapsed time only", p)
	}
	l.conversion(plugins.ProgressEvent{Address: "migration.b", Item: plugins.ConversionItem("b-a1"), Done: 7, Total: 10})
	if p := view("migration.b"); p.Bytes != nil {
		t.Errorf("an earlier attempt's figures shown as the job's: %+v", p.Bytes)
	}
}
