package reconcile

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// TestPlanGolden renders plans for people and as JSON, from the same value,
// in the situations the diff must tell apart.
func TestPlanGolden(t *testing.T) {
	tests := map[string]func(t *testing.T) (*harness, PlanRequest){
		"fresh": func(t *testing.T) (*harness, PlanRequest) {
			h := newHarness(t, "", "db", "web[a]", "web[b]")
			h.migration(`migration.web["a"]`).DependsOn = []addrs.Migration{{Name: "db"}}
			h.migration(`migration.web["b"]`).DependsOn = []addrs.Migration{{Name: "db"}}
			h.rehash()
			return h, PlanRequest{}
		},
		"no-changes": func(t *testing.T) (*harness, PlanRequest) {
			h := newHarness(t, "", "db", "web")
			h.converge()
			return h, PlanRequest{}
		},
		"drift": func(t *testing.T) (*harness, PlanRequest) {
			h := newHarness(t, "", "domain", "fingerprint", "convert", "gone", "tamper", "undefined", "kept",
				"queued", "failed", "exported", "vanished")
			h.converge()
			// domain settings changed → ~ redefine
			h.migration("domain").Domain.MemoryMiB = 4096
			// source VM changed after export → -/+ from export
			h.src.SetVM(h.migration("fingerprint").VM, plugintest.VM{Fingerprint: "v2"})
			// convert settings changed → -/+ from submit
			h.migration("convert").Convert.Compress = true
			// domain definition drifted → ~ redefine
			mustDo(t, h.tgt.Tamper("tamper"))
			// domain gone, converted disks still there → -/+ from define
			mustDo(t, h.tgt.Undefine("undefined"))
			// removed from config → - (prune, forget)
			h.cfg.Migrations = without(h.cfg.Migrations, "gone")
			h.rehash()
			st := h.state()
			// exported, never submitted → + from submit
			st.Migrations["migration.exported"].rewind()
			// an export file vanished before conversion → -/+ from export
			st.Migrations["migration.vanished"].rewind()
			mustDo(t, os.Remove(st.Migrations["migration.vanished"].Export.Files[0].Path))
			// a job that failed → + retry as attempt 2
			h.conv.Rounds = 1
			h.conv.FailNextJobs("migration.failed", 1)
			h.resubmit(st, "failed")
			// a job still in the queue → + await
			h.conv.Rounds = 1000
			h.resubmit(st, "queued")
			h.writeState(st)
			return h, PlanRequest{}
		},
		"replace-requested": func(t *testing.T) (*harness, PlanRequest) {
			h := newHarness(t, "", "a", "b")
			h.converge()
			return h, PlanRequest{Replace: []addrs.Migration{{Name: "b"}}}
		},
		"prevent-destroy": func(t *testing.T) (*harness, PlanRequest) {
			h := newHarness(t, "", "a", "b")
			h.migration("b").PreventDestroy = true
			h.rehash()
			h.converge()
			h.cfg.Migrations = without(h.cfg.Migrations, "b")
			h.rehash()
			return h, PlanRequest{}
		},
		"findings": func(t *testing.T) (*harness, PlanRequest) {
			h := newHarness(t, "", "missing", "warned", "taken")
			h.src.SetVM(h.migration("missing").VM, plugintest.VM{Missing: true})
			h.src.SetVM(h.migration("warned").VM, plugintest.VM{Findings: []plugins.Finding{{Severity: plugins.SeverityWarning, Summary: "VMware Tools are not running"}}})
			h.tgt.AddForeignDomain("taken")
			return h, PlanRequest{}
		},
	}
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			h, req := setup(t)
			p := h.plan(req)
			pairs := []string{h.dir, "$TMP"}
			pairs = append(pairs, testLineage, "$LINEAGE")
			norm := strings.NewReplacer(pairs...)
			b, err := p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			// The prior state's serial counts its writes, which steps that
			// end together share (a group commit): it varies with timing, and is
			// written as 1 (other tests read these files as saved plans).
			golden(t, "plan/"+name+".json", serialRE.ReplaceAllString(norm.Replace(string(b)), `"serial": 1`))
			back, err := DecodePlan(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p, back); diff != "" {
				t.Errorf("plan does not round-trip through JSON (-want +got):\n%s", diff)
			}
		})
	}
}

// rewind makes a converged record look exported and not yet submitted.
func (ms *MigrationState) rewind() {
	ms.Job, ms.Outputs, ms.Domain = nil, nil, nil
	ms.Digests.Convert, ms.Digests.Define = "", ""
}

// resubmit rewinds a record to a fresh job (attempt 2) submitted to the
// converter and observed once.
func (h *harness) resubmit(st *State, name string) {
	h.t.Helper()
	ms := st.Migrations["migration."+name]
	ms.rewind()
	now := time.Now().UTC()
	id := JobID(st.Lineage, ms.Address, 2)
	ms.Attempts = 2
	ms.Job = &JobRecord{Converter: convAddr.String(), ID: id, Attempt: 2, SubmittedAt: &now, State: plugins.JobQueued}
	ms.Digests.Convert = Digests(h.migration(name)).Convert
	ctx := context.Background()
	if _, err := h.conv.Submit(ctx, plugins.SubmitRequest{Address: ms.Address, Campaign: st.Lineage, JobID: id, Export: *ms.Export}); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.conv.ObserveJobs(ctx, plugins.ObserveJobsRequest{Jobs: []plugins.JobQuery{{Address: ms.Address, JobID: id, Want: wantJob(st.Lineage, ms)}}}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) writeState(st *State) {
	h.t.Helper()
	if _, err := h.store.Lock("test"); err != nil {
		h.t.Fatal(err)
	}
	defer h.store.Unlock()
	if err := h.store.Write(st); err != nil {
		h.t.Fatal(err)
	}
}

func without(ms []*schema.Migration, name string) []*schema.Migration {
	var out []*schema.Migration
	for _, m := range ms {
		if m.Addr.Name != name {
			out = append(out, m)
		}
	}
	return out
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPlanIsBatchedPerInstance(t *testing.T) {
	h := newHarness(t, "", "a", "b", "c", "d")
	h.converge()
	before := [3]int{h.src.ObserveCalls(), h.conv.ObserveCalls(), h.tgt.ObserveCalls()}
	h.plan(PlanRequest{})
	after := [3]int{h.src.ObserveCalls(), h.conv.ObserveCalls(), h.tgt.ObserveCalls()}
	// Every job is recorded as done, so the converter is not asked.
	if want := [3]int{before[0] + 1, before[1], before[2] + 1}; after != want {
		t.Errorf("observe calls after one plan = %v, want %v (one per instance)", after, want)
	}
}

var errInjected = errors.New("injected")

var serialRE = regexp.MustCompile(`"serial": [0-9]+`)
