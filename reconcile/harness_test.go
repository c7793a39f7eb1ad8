package reconcile

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	srcAddr  = addrs.Plugin{Kind: addrs.KindSource, Type: "fake", Name: "src"}
	convAddr = addrs.Plugin{Kind: addrs.KindConverter, Type: "fake", Name: "conv"}
	tgtAddr  = addrs.Plugin{Kind: addrs.KindTarget, Type: "fake", Name: "kvm"}
)

// harness is an engine over the fakes, with config built in Go.
type harness struct {
	t     testing.TB
	dir   string
	cfg   *schema.Config
	src   *plugintest.Source
	conv  *plugintest.Converter
	tgt   *plugintest.Target
	set   *plugins.Set
	store *Store
}

// newHarness makes a config with one migration per name ("web[a]" makes
// migration.web["a"]); fakeDir "" keeps the fakes in memory.
func newHarness(t testing.TB, fakeDir string, names ...string) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir}
	var err error
	if h.src, err = plugintest.NewSource("src", fakeDir); err != nil {
		t.Fatal(err)
	}
	if h.conv, err = plugintest.NewConverter("conv", fakeDir); err != nil {
		t.Fatal(err)
	}
	if h.tgt, err = plugintest.NewTarget("kvm", fakeDir); err != nil {
		t.Fatal(err)
	}
	h.set = plugins.NewSet()
	h.set.Sources[srcAddr.String()] = h.src
	h.set.Converters[convAddr.String()] = h.conv
	h.set.Targets[tgtAddr.String()] = h.tgt
	h.cfg = &schema.Config{Dir: dir, Agent: schema.AgentConfig{Parallelism: 4, StateDir: filepath.Join(dir, "state")}}
	for _, n := range names {
		h.cfg.Migrations = append(h.cfg.Migrations, newMigration(dir, n))
	}
	h.rehash()
	if h.store, err = OpenStore(h.cfg.Agent.StateDir); err != nil {
		t.Fatal(err)
	}
	return h
}

func newMigration(dir, n string) *schema.Migration {
	a := addrs.Migration{Name: n}
	if name, key, ok := strings.Cut(n, "["); ok {
		a = addrs.Migration{Name: name, Key: strings.TrimSuffix(key, "]"), HasKey: true}
	}
	return &schema.Migration{
		Addr: a, Source: srcAddr, Converter: convAddr, Target: tgtAddr,
		VM:      "/DC1/vm/" + strings.NewReplacer("[", "-", "]", "").Replace(n),
		Export:  schema.ExportSettings{Dir: filepath.Join(dir, "exports")},
		Convert: schema.ConvertSettings{Format: "qcow2", Validate: true},
		Domain:  schema.DomainSettings{MemoryMiB: 2048, VCPUs: 2},
	}
}

// rehash recomputes digests after a test edits the config.
func (h *harness) rehash() {
	// The temp dir is left out, so that golden plans are stable.
	var all []string
	for _, m := range h.cfg.Migrations {
		mm := *m
		mm.Export.Dir = strings.TrimPrefix(m.Export.Dir, h.dir)
		m.Digest = digestOf([]any{Digests(&mm), m.DependsOn, m.PreventDestroy})
		all = append(all, m.Digest)
	}
	h.cfg.Digest = digestOf(all)
}

func (h *harness) migration(n string) *schema.Migration {
	for _, m := range h.cfg.Migrations {
		if m.Addr.Name == n || m.Addr.String() == n {
			return m
		}
	}
	h.t.Fatalf("no migration %s", n)
	return nil
}

func (h *harness) state() *State {
	h.t.Helper()
	st, err := h.store.Load()
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// testLineage is the campaign of every harness state, so that artifact
// names in golden plans are stable.
const testLineage = "00000000-0000-4000-8000-0000000000aa"

func (h *harness) plan(req PlanRequest) *Plan {
	h.t.Helper()
	req.Refresh = true
	req.NewLineage = testLineage
	p, err := MakePlan(context.Background(), h.cfg, h.state(), h.set, req)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) engine() *Engine {
	return &Engine{Config: h.cfg, Plugins: h.set, Store: h.store, Log: hclog.NewNullLogger(), PollInterval: time.Millisecond}
}

// apply locks, loads state and applies p.
func (h *harness) applyCtx(ctx context.Context, p *Plan) *Result {
	h.t.Helper()
	if _, err := h.store.Lock("apply"); err != nil {
		h.t.Fatal(err)
	}
	defer h.store.Unlock()
	res, err := h.engine().Apply(ctx, h.state(), p, ApplyOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func (h *harness) apply(p *Plan) *Result { h.t.Helper(); return h.applyCtx(context.Background(), p) }

// converge plans and applies, and checks that a second plan is empty.
func (h *harness) converge() *Result {
	h.t.Helper()
	res := h.apply(h.plan(PlanRequest{}))
	if !res.OK() {
		h.t.Fatalf("apply did not finish: %+v", res)
	}
	if p := h.plan(PlanRequest{}); p.HasChanges() {
		h.t.Fatalf("plan after apply has changes: %s", renderString(p))
	}
	return res
}

// renderString shows a plan in a failure message.
func renderString(p *Plan) string {
	b, _ := p.Encode()
	return string(b)
}

// golden compares got with testdata/NAME, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}
