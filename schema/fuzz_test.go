package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/rogpeppe/go-internal/txtar"
)

// FuzzLoad feeds arbitrary bytes to the loader as main.hcl or
// main.hcl.json. Whatever the input, Load must not panic, and its result
// must keep the contract: a Config only without errors, every error about
// the file pointing into it, and the Config's values plain (known,
// unmarked).
//
// Seeds: the examples, the configs of the CLI scripts, and the hand-picked
// entries under testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	for _, src := range seedConfigs(f) {
		f.Add(src, false)
	}
	f.Add([]byte(`{"migration": {"a": {"for_each": "${toset([\"x\"])}", "vm": "${each.key}"}}}`), true)
	f.Add([]byte(`{"locals": {"a": "${local.b}", "b": "${local.a}"}, "variable": {"x": {"type": "list(string)"}}}`), true)

	f.Fuzz(func(t *testing.T, src []byte, asJSON bool) {
		name := "main.hcl"
		if asJSON {
			name = "main.hcl.json"
		}
		// A hang is a failure too: fuzzing reports no per-input timeout,
		// so crash the worker (the input is then saved as a crasher).
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				panic(fmt.Sprintf("Load has not returned after 20s on %q (json=%v)", src, asJSON))
			}
		}()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, files, diags := Load(LoadOptions{
			Dir:     dir,
			Env:     []string{"HYPERAGENT_VAR_vcenter_password=fuzz"},
			Plugins: testPlugins,
		})
		checkLoadResult(t, dir, cfg, files, diags)
		if !asJSON {
			Format(name, src) // must not panic either
		}
	})
}

func checkLoadResult(t *testing.T, dir string, cfg *Config, files Files, diags hcl.Diagnostics) {
	if diags.HasErrors() != (cfg == nil) {
		t.Fatalf("Config present = %v with errors = %v", cfg != nil, diags.HasErrors())
	}
	if len(files) == 0 {
		t.Fatal("no Files returned")
	}
	for _, d := range diags {
		// With one file and no -var, every problem has a place in it.
		if d.Subject == nil {
			t.Errorf("diagnostic without a range: %s: %s", d.Summary, d.Detail)
			continue
		}
		if !strings.HasPrefix(d.Subject.Filename, dir) {
			t.Errorf("diagnostic %q points outside the config: %s", d.Summary, d.Subject)
		}
	}
	if cfg == nil {
		return
	}
	for _, group := range []map[string]*PluginBlock{cfg.Sources, cfg.Converters, cfg.Targets} {
		for k, b := range group {
			if !b.Config.IsWhollyKnown() || b.Config.ContainsMarked() {
				t.Errorf("plugin %s config is not plain: %#v", k, b.Config)
			}
		}
	}
	for _, v := range cfg.Variables {
		if v.Value.ContainsMarked() {
			t.Errorf("variable %s is marked", v.Name)
		}
	}
	if len(cfg.Digest) != 64 {
		t.Errorf("digest %q", cfg.Digest)
	}
}

// seedConfigs collects the .hcl files of the examples and of the CLI's
// testscript archives.
func seedConfigs(f *testing.F) [][]byte {
	var out [][]byte
	examples, _ := filepath.Glob(filepath.Join("..", "examples", "*", "*.hcl"))
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	scripts, _ := filepath.Glob(filepath.Join("..", "cmd", "hyperagent", "testdata", "script", "*.txtar"))
	for _, p := range scripts {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if strings.HasSuffix(file.Name, ".hcl") {
				out = append(out, file.Data)
			}
		}
	}
	if len(out) < 10 {
		f.Fatalf("only %d seed configs found", len(out))
	}
	return out
}
