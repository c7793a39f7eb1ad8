package agent

import (
	"context"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

// quietConverter publishes no figures (as the hyper2kvm daemon); a
// figuresConverter publishes 40 of 100 bytes of every job asked about,
// and counts the questions.
type quietConverter struct{ plugins.Converter }

type figuresConverter struct {
	quietConverter
	asked []plugins.JobQuery
}

func (c *figuresConverter) ReportProgress(_ context.Context, req plugins.JobProgressRequest) error {
	c.asked = append(c.asked, req.Jobs...)
	for _, q := range req.Jobs {
		req.Progress(plugins.ProgressEvent{Address: q.Address, Item: plugins.ConversionItem(q.JobID), Done: 40, Total: 100})
	}
	return nil
}

// TestReadConversions: the agent asks each converter that can tell about
// its jobs queued or converting, and only those; their figures show in
// the API's view; a converter that cannot tell leaves its job's bytes
// unknown.
func TestReadConversions(t *testing.T) {
	a := New(Options{})
	sub := time.Now().Add(-time.Minute)
	a.live.planned(&reconcile.Plan{Changes: []reconcile.Change{
		{Address: "migration.a", Action: reconcile.ActionCreate, Phase: reconcile.PhaseConverting, Converter: "converter.w.x"},
		{Address: "migration.b", Action: reconcile.ActionCreate, Phase: reconcile.PhaseQueued, Converter: "converter.d.x"},
		{Address: "migration.c", Action: reconcile.ActionCreate, Phase: reconcile.PhaseConverted, Converter: "converter.w.x"},
	}})
	a.live.record(&reconcile.State{Migrations: map[string]*reconcile.MigrationState{
		"migration.a": {Job: &reconcile.JobRecord{ID: "a-a1", Attempt: 1, Converter: "converter.w.x", SubmittedAt: &sub}},
		"migration.b": {Job: &reconcile.JobRecord{ID: "b-a1", Attempt: 1, Converter: "converter.d.x", SubmittedAt: &sub}},
		"migration.c": {Job: &reconcile.JobRecord{ID: "c-a1", Attempt: 1, Converter: "converter.w.x", SubmittedAt: &sub}},
	}})
	w := &figuresConverter{}
	a.setConverters(map[string]plugins.Converter{"converter.w.x": w, "converter.d.x": quietConverter{}})
	a.readConversions(context.Background())
	if len(w.asked) != 1 || w.asked[0].JobID != "a-a1" {
		t.Errorf("asked about %+v, want a-a1 only (c-a1 is converted)", w.asked)
	}
	for _, m := range a.Migrations() {
		var b *ByteProgress
		if m.Progress != nil {
			b = m.Progress.Bytes
		}
		switch m.Address {
		case "migration.a":
			if b == nil || b.Done != 40 || b.Total != 100 {
				t.Errorf("%s: bytes %+v, want 40 of 100", m.Address, b)
			}
		case "migration.b":
			if m.Progress == nil || b != nil {
				t.Errorf("%s: progress %+v, want the elapsed time only", m.Address, m.Progress)
			}
		}
	}
}
