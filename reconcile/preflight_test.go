package reconcile

import (
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// TestPreflightBlocksBeforeAnyStep: each case that today surfaced only in
// apply (some after the VM was powered off) is an error finding in the
// plan, the change is blocked, and apply touches nothing.
func TestPreflightBlocksBeforeAnyStep(t *testing.T) {
	tests := map[string]struct {
		setup func(h *harness)
		want  string // in the finding's summary
	}{
		"bare image without memory and vcpus": {func(h *harness) {
			h.migration("a").Domain.MemoryMiB, h.migration("a").Domain.VCPUs = 0, 0
			h.src.SetVM(h.migration("a").VM, plugintest.VM{Fingerprint: "v1", Bare: true})
		}, "vcpus and memory of /DC1/vm/a unknown"},
		"a VM name libvirt refuses": {func(h *harness) {
			h.src.SetVM(h.migration("a").VM, plugintest.VM{Fingerprint: "v1", Name: "web 01's <db>"})
		}, `domain name "web 01's <db>" cannot be used`},
		"a name of 300 characters": {func(h *harness) {
			h.migration("a").Domain.Name = strings.Repeat("x", 300)
		}, "cannot be used"},
		"two migrations, one domain": {func(h *harness) {
			h.migration("a").Domain.Name = "shared"
			h.migration("b").Domain.Name = "shared"
		}, `domain name "shared" is also migration.b's`},
		"the converter cannot run a stage": {func(h *harness) {
			h.conv.SetCheck("migration.a", []plugins.Finding{{Severity: plugins.SeverityError,
				Summary: "the built-in worker cannot run fix (no libguestfs)", Detail: "remove the fix block"}})
		}, "cannot run fix"},
		"no live consumer": {func(h *harness) {
			h.conv.SetCheck("migration.a", []plugins.Finding{{Severity: plugins.SeverityError,
				Summary: "no live consumer serves /wf: no worker heartbeat"}})
		}, "no live consumer"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "", "a", "b")
			tc.setup(h)
			h.rehash()
			p := h.plan(PlanRequest{})
			c := p.Change("migration.a")
			if !c.Blocked {
				t.Fatalf("not blocked: %+v", c)
			}
			found := false
			for _, f := range c.Findings {
				found = found || (f.Severity == "error" && strings.Contains(f.Summary, tc.want))
			}
			if !found {
				t.Fatalf("findings %+v, want an error with %q", c.Findings, tc.want)
			}
			h.apply(p)
			if n := h.src.Exports("migration.a"); n != 0 {
				t.Errorf("migration.a exported %d times although its plan is blocked", n)
			}
		})
	}
}

// TestQueuedJobWithoutConsumerWarns: a job already in the queue is not
// blocked when its consumer is down (nothing new is sent), but the plan
// says it waits.
func TestQueuedJobWithoutConsumerWarns(t *testing.T) {
	h := newHarness(t, "", "a")
	h.conv.Rounds = 1000
	p := h.plan(PlanRequest{})
	p.Changes[0].Steps = p.Changes[0].Steps[:2] // export and submit only
	h.apply(p)
	h.conv.SetCheck("migration.a", []plugins.Finding{{Severity: plugins.SeverityError, Summary: "no live consumer serves /wf"}})
	c := h.plan(PlanRequest{}).Change("migration.a")
	if c.Blocked || len(c.Findings) != 1 || c.Findings[0].Severity != "warning" || c.Steps[0].Kind != StepAwait {
		t.Fatalf("change %+v, want await with a warning", c)
	}
}

// TestFallbackConverter: when no live consumer serves a converter whose
// block names a fallback, new jobs go to the fallback, and the plan says
// so; when the fallback is down too, the change is blocked.
func TestFallbackConverter(t *testing.T) {
	h := newHarness(t, "", "a")
	alt, err := plugintest.NewConverter("alt", "")
	if err != nil {
		t.Fatal(err)
	}
	altAddr := addrs.Plugin{Kind: addrs.KindConverter, Type: "fake", Name: "alt"}
	h.set.Converters[altAddr.String()] = alt
	h.cfg.Converters = map[string]*schema.PluginBlock{
		"fake.conv": {Addr: convAddr, Fallback: &altAddr},
		"fake.alt":  {Addr: altAddr},
	}
	down := plugins.ConsumerStatus{Live: false, Detail: "hyper2kvm@x.service is inactive (dead)"}
	h.conv.SetConsumer(down)
	h.conv.SetCheck("migration.a", []plugins.Finding{{Severity: plugins.SeverityError, Summary: "no live consumer serves /wf"}})
	p := h.plan(PlanRequest{})
	c := p.Change("migration.a")
	if c.Blocked || c.Converter != altAddr.String() || len(c.Findings) != 1 || c.Findings[0].Severity != "warning" ||
		!strings.Contains(c.Findings[0].Summary, "fallback converter.fake.alt") {
		t.Fatalf("change %+v, want the fallback with a warning", c)
	}
	h.converge()
	if alt.Submits("migration.a") != 1 || h.conv.Submits("migration.a") != 0 {
		t.Errorf("submits: fallback %d, primary %d; want the job on the fallback", alt.Submits("migration.a"), h.conv.Submits("migration.a"))
	}

	h2 := newHarness(t, "", "b")
	h2.set.Converters[altAddr.String()] = alt
	h2.cfg.Converters = h.cfg.Converters
	h2.conv.SetConsumer(down)
	h2.conv.SetCheck("migration.b", []plugins.Finding{{Severity: plugins.SeverityError, Summary: "no live consumer serves /wf"}})
	alt.SetConsumer(down)
	if c := h2.plan(PlanRequest{}).Change("migration.b"); !c.Blocked || c.Converter != convAddr.String() {
		t.Fatalf("both down: change %+v, want blocked on the primary", c)
	}
}

// TestForeignExportDir: an export directory another owner claimed (a
// copied state, another campaign) blocks the export in the plan.
func TestForeignExportDir(t *testing.T) {
	h := newHarness(t, "", "a")
	dir := ExportDir(h.migration("a").Export.Dir, testLineage, "migration.a")
	if err := plugins.ClaimDir(dir, plugins.Owner{Campaign: "someone-else", Address: "migration.a"}, 0o750); err != nil {
		t.Fatal(err)
	}
	c := h.plan(PlanRequest{}).Change("migration.a")
	if !c.Blocked || !strings.Contains(firstError(c.Findings), "belongs to migration.a of campaign someone-else") {
		t.Fatalf("change %+v, want blocked naming the owner", c)
	}
}
