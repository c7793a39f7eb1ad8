package pass

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// A world is a migration repo over the file-backed fake plugins, loaded
// and opened the way the CLI and the agent do it: HCL on disk,
// schema.Load with the plugins' schemas, Open.

func fakeRegistry() *plugins.Registry { return plugins.NewRegistry(plugintest.Factories()...) }

// worldHCL is a repo of the given migrations (name → depends_on, "" for
// none) over fakes in dir/fakes; extra is added to every plugin block.
func worldHCL(dir string, extra map[string]string, migrations ...string) string {
	var b strings.Builder
	fakes := filepath.Join(dir, "fakes")
	fmt.Fprintf(&b, "agent {\n  parallelism = 3\n}\n")
	for _, kind := range []string{"source", "converter", "target"} {
		name := map[string]string{"source": "src", "converter": "conv", "target": "kvm"}[kind]
		fmt.Fprintf(&b, "%s \"fake\" %q {\n  dir = %q\n%s}\n", kind, name, fakes, extra[kind])
	}
	for _, m := range migrations {
		name, rest, _ := strings.Cut(m, " ")
		vm := "/DC1/vm/" + name
		if strings.Contains(rest, "for_each") {
			vm += "-${each.key}"
		}
		fmt.Fprintf(&b, `migration %q {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "%s"
  export { dir = %q }
  domain {
    memory = "1GiB"
    vcpus  = 1
  }
  %s
}
`, name, vm, filepath.Join(dir, "exports"), rest)
	}
	return b.String()
}

func writeWorld(t testing.TB, dir, hcl string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
}

// openWorld loads the repo in dir and opens it.
func openWorld(ctx context.Context, dir string, vars []string, red *reconcile.Redactor) (*Workspace, error) {
	reg := fakeRegistry()
	cfg, _, diags := schema.Load(schema.LoadOptions{Dir: dir, Vars: vars, Plugins: reg.Schemas()})
	if diags.HasErrors() {
		return nil, diags
	}
	w, err := Open(ctx, OpenRequest{Config: cfg, Registry: reg, Redact: red})
	if err != nil {
		return nil, err
	}
	w.PollInterval = time.Millisecond
	return w, nil
}

func mustOpen(t testing.TB, dir string, vars ...string) *Workspace {
	t.Helper()
	w, err := openWorld(context.Background(), dir, vars, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func fakes(w *Workspace) (*plugintest.Source, *plugintest.Converter, *plugintest.Target) {
	return w.Plugins.Sources["source.fake.src"].(*plugintest.Source),
		w.Plugins.Converters["converter.fake.conv"].(*plugintest.Converter),
		w.Plugins.Targets["target.fake.kvm"].(*plugintest.Target)
}

func applyAll(t testing.TB, w *Workspace) *Result {
	t.Helper()
	res, err := w.Run(context.Background(), Request{Mode: ModeApply, Operation: "apply", Plan: reconcile.PlanRequest{Refresh: true}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
