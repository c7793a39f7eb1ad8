package jsondoc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/docs"
	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

// The engine's golden plans (made by reconcile's tests over the fakes:
// findings, drift, replacements, no changes) render as plan documents
// that are valid against docs/schema/plan.json, lists present and [].
func TestPlanDocuments(t *testing.T) {
	files, err := filepath.Glob("../testdata/plan/*.json")
	if err != nil || len(files) < 5 {
		t.Fatalf("golden plans: %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := reconcile.DecodePlan(b)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := json.Marshal(NewPlan(p, "test"))
			if err != nil {
				t.Fatal(err)
			}
			if err := docs.Validate("plan.json", doc); err != nil {
				t.Fatalf("%v\n%s", err, doc)
			}
			// Only a change's condition is null, when there is none.
			if strings.Contains(strings.ReplaceAll(string(doc), `"condition":null`, ""), "null") {
				t.Errorf("null in the document:\n%s", doc)
			}
			var back map[string]any
			if err := json.Unmarshal(doc, &back); err != nil || back["format_version"] != FormatVersion {
				t.Errorf("format_version %v (%v)", back["format_version"], err)
			}
		})
	}
}

func TestStateDocument(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	st := reconcile.NewState()
	st.Lineage, st.Serial = "3f1c2a9e-8d7b-4c55-9a61-0b2e4d6f8a10", 7
	sum := strings.Repeat("ab", 32)
	st.Migrations["migration.web"] = &reconcile.MigrationState{Address: "migration.web", Source: "source.fake.src",
		Converter: "converter.fake.conv", Target: "target.fake.kvm", VM: "/DC1/vm/web", CreatedAt: at, UpdatedAt: at,
		// An export whose source listed no NICs and no disk facts: nil lists.
		Export: &plugins.ExportResult{Dir: "/x", Files: []plugins.File{{Path: "/x/d.vmdk", Size: 3, SHA256: sum}},
			Facts: plugins.VMFacts{Name: "web", OSFamily: "linux", Firmware: "bios"}, ExportedAt: at},
		Job:       &reconcile.JobRecord{Converter: "converter.fake.conv", ID: "web-1-a1", Attempt: 1},
		LastError: &reconcile.ErrorRecord{Step: reconcile.StepAwait, Message: "boom", At: at}}
	st.Migrations[`migration.app["a"]`] = &reconcile.MigrationState{Address: `migration.app["a"]`, CreatedAt: at, UpdatedAt: at}
	d := NewState(st, "test")
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := docs.Validate("state.json", b); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !strings.Contains(string(b), `"suspended_all":null`) || strings.Count(string(b), "null") != 1 {
		t.Errorf("null other than suspended_all:\n%s", b)
	}
	var addrs []string
	for _, m := range d.Migrations {
		addrs = append(addrs, m.Address)
	}
	if diff := cmp.Diff([]string{`migration.app["a"]`, "migration.web"}, addrs); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if st.Migrations["migration.web"].Export.Disks != nil {
		t.Error("NewState changed the state it rendered")
	}
}

func TestFillEmpty(t *testing.T) {
	type inner struct {
		L []int
		M map[string][]string
	}
	type outer struct {
		A     []string
		P     *inner
		Nil   *inner
		S     []inner
		M     map[string]inner
		MP    map[string]*inner
		Any   any
		Omit  []int `json:",omitempty"`
		priv  []int
		Times []time.Time
	}
	v := &outer{P: &inner{M: map[string][]string{"k": nil}}, S: []inner{{}}, M: map[string]inner{"x": {}},
		MP: map[string]*inner{"y": {}}, Any: []int(nil)}
	FillEmpty(v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"A":[],"P":{"L":[],"M":{"k":[]}},"Nil":null,"S":[{"L":[],"M":{}}],"M":{"x":{"L":[],"M":{}}},"MP":{"y":{"L":[],"M":{}}},"Any":null,"Times":[]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if v.priv != nil {
		t.Error("an unexported field was set")
	}
}

// The schemas of the plan and state documents declare exactly the
// fields of the Go types they are rendered from, so a field added to
// one of them fails here until the schema describes it.
func TestSchemasDeclareEveryField(t *testing.T) {
	for _, tc := range []struct {
		v             any
		file, pointer string
	}{
		{Plan{}, "plan.json", "/properties"},
		{Options{}, "plan.json", "/properties/options/properties"},
		{reconcile.PriorState{}, "plan.json", "/properties/prior_state/properties"},
		{Change{}, "plan.json", "/$defs/change/properties"},
		{reconcile.Step{}, "plan.json", "/$defs/step/properties"},
		{reconcile.Condition{}, "plan.json", "/$defs/condition/properties"},
		{reconcile.Summary{}, "plan.json", "/$defs/summary/properties"},
		{reconcile.Finding{}, "common.json", "/$defs/finding/properties"},
		{State{}, "state.json", "/properties"},
		{reconcile.MigrationState{}, "state.json", "/$defs/migration/properties"},
		{reconcile.StepDigests{}, "state.json", "/$defs/migration/properties/digests/properties"},
		{plugins.ExportResult{}, "state.json", "/$defs/export/properties"},
		{plugins.File{}, "state.json", "/$defs/file/properties"},
		{plugins.Disk{}, "state.json", "/$defs/disk/properties"},
		{plugins.FileIdentity{}, "state.json", "/$defs/identity/properties"},
		{plugins.VMFacts{}, "state.json", "/$defs/facts/properties"},
		{plugins.DiskFact{}, "state.json", "/$defs/facts/properties/disks/items/properties"},
		{plugins.NIC{}, "state.json", "/$defs/facts/properties/nics/items/properties"},
		{reconcile.JobRecord{}, "state.json", "/$defs/job/properties"},
		{plugins.Output{}, "state.json", "/$defs/output/properties"},
		{plugins.DefinedDomain{}, "state.json", "/$defs/domain/properties"},
		{reconcile.ErrorRecord{}, "state.json", "/$defs/error/properties"},
		{reconcile.Result{}, "ui.json", "/$defs/result/properties"},
		{reconcile.Failure{}, "ui.json", "/$defs/failure/properties"},
		{reconcile.ConfigPlace{}, "ui.json", "/$defs/failure/properties/config/properties"},
		{reconcile.Wait{}, "ui.json", "/$defs/result/properties/waiting/items/properties"},
		{reconcile.Skip{}, "ui.json", "/$defs/result/properties/skipped/items/properties"},
	} {
		if err := docs.FieldsMatch(reflect.TypeOf(tc.v), tc.file, tc.pointer); err != nil {
			t.Error(err)
		}
	}
}

// The documents carry every field of the engine's plan (under the same
// name), so that nothing the saved plan holds is missing from show -json.
func TestPlanDocumentCoversThePlan(t *testing.T) {
	names := func(v any) map[string]bool {
		out := map[string]bool{}
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			n, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			out[n] = true
		}
		return out
	}
	for _, pair := range [][2]any{{reconcile.Plan{}, Plan{}}, {reconcile.Change{}, Change{}}} {
		have := names(pair[1])
		for n := range names(pair[0]) {
			if !have[n] {
				t.Errorf("%T has %s, the document %T has not", pair[0], n, pair[1])
			}
		}
	}
}
