package reconcile

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

// benchWorld is 10,000 migrations over in-memory fakes: half never
// started, half defined (state records them and the target has them).
func benchWorld(b *testing.B, n int) (*harness, *State) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("vm[%05d]", i)
	}
	h := newHarness(b, "", names...)
	st := NewState()
	st.Lineage, st.Serial = "bench", 1
	ctx := context.Background()
	now := time.Now().UTC()
	for i, m := range h.cfg.Migrations {
		if i%2 == 0 {
			continue
		}
		a := m.Addr.String()
		d := Digests(m)
		exp := plugins.ExportResult{Dir: ExportDir(m.Export.Dir, "bench", a), Fingerprint: "v1",
			Files: []plugins.File{{Path: "/nonexistent/disk-0.vmdk", Size: 1}}}
		outs := []plugins.Output{{DiskID: "disk-0", Path: "/nonexistent/disk-0.qcow2", Size: 1}}
		name := DomainName(m, nil, plugins.VMObservation{})
		resp, err := h.tgt.Define(ctx, plugins.DefineRequest{Address: a, Campaign: "bench", Name: name, Outputs: nil})
		if err != nil {
			b.Fatal(err)
		}
		st.Migrations[a] = &MigrationState{Address: a, Source: m.Source.String(), Converter: m.Converter.String(),
			Target: m.Target.String(), VM: m.VM, ConfigDigest: m.Digest, Digests: d, Fingerprint: "v1",
			Export: &exp, Attempts: 1, Outputs: outs, Domain: &resp.Domain,
			Job:       &JobRecord{Converter: m.Converter.String(), ID: JobID("bench", a, 1), Attempt: 1, SubmittedAt: &now, State: plugins.JobSucceeded},
			CreatedAt: now, UpdatedAt: now}
	}
	return h, st
}

// BenchmarkPlan10k is a full plan (batched observation through the fakes,
// then the diff) of 10,000 migrations; BenchmarkDiff10k is the engine's
// pure share of it, over an observation made once.
func BenchmarkPlan10k(b *testing.B) {
	h, st := benchWorld(b, 10000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := MakePlan(ctx, h.cfg, st, h.set, PlanRequest{Refresh: true})
		if err != nil {
			b.Fatal(err)
		}
		if p.Summary.Migrate != 5000 {
			b.Fatalf("summary %+v", p.Summary)
		}
	}
}

func BenchmarkDiff10k(b *testing.B) {
	h, st := benchWorld(b, 10000)
	obs, err := Observe(context.Background(), h.cfg, st, st.Lineage, h.set, h.cfg.Migrations)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p := Diff(DiffRequest{Config: h.cfg, State: st, Observed: obs})
		if p.Summary.Migrate != 5000 {
			b.Fatalf("summary %+v", p.Summary)
		}
	}
}
