package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// exampleVars supplies the variables an example needs from outside, the way
// a user would: through the environment.
var exampleVars = map[string][]string{
	"wave1": {"HYPERAGENT_VAR_vcenter_password=example-secret", "HYPERAGENT_VAR_ops_webhook_secret=example-hook-secret",
		"HYPERAGENT_VAR_chat_webhook_url=https://chat.example.com/hooks/T0/B0/example"},
	"demo": {"HYPERAGENT_VAR_vcenter_password=example-secret"},
}

// TestExamples loads every example repo with the builtin plugins' schemas:
// any diagnostic, even a warning, fails.
func TestExamples(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ent := range entries {
		if !ent.IsDir() {
			continue
		}
		n++
		name := ent.Name()
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			e := &env{stderr: &stderr, environ: exampleVars[name], registry: builtinRegistry()}
			cfg, files, diags := loadConfig(e, filepath.Join("..", "..", "examples", name), configFlags{})
			if len(diags) > 0 {
				writeDiagnostics(e, files, diags)
				t.Fatalf("examples/%s has diagnostics:\n%s", name, stderr.String())
			}
			if len(cfg.Migrations) == 0 {
				t.Errorf("examples/%s declares no migration", name)
			}
			for _, m := range cfg.Migrations {
				if m.Digest == "" {
					t.Errorf("%s has no digest", m.Addr)
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no example found under examples/")
	}
}
