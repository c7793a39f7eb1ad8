package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const graphBefore = `
migration "db" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/db"
  export { dir = "EXPORTS" }
}
migration "web" {
  for_each   = toset(["a", "b"])
  source     = source.fake.src
  converter  = converter.fake.conv
  target     = target.fake.kvm
  vm         = "/DC1/vm/web-${each.key}"
  export { dir = "EXPORTS" }
  depends_on = [migration.db]
}
migration "rep" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/rep"
  export { dir = "EXPORTS" }
}
migration "old" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/old"
  export { dir = "EXPORTS" }
}
`

// graphAfter: db's domain settings change (update), rep's export
// settings (replace), old is gone (remove), new is added after the web
// tier (create, wave 3), and blk's VM has an error finding (blocked).
const graphAfter = `
migration "db" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/db"
  export { dir = "EXPORTS" }
  domain { memory = "4GiB" }
}
migration "web" {
  for_each   = toset(["a", "b"])
  source     = source.fake.src
  converter  = converter.fake.conv
  target     = target.fake.kvm
  vm         = "/DC1/vm/web-${each.key}"
  export { dir = "EXPORTS" }
  depends_on = [migration.db]
}
migration "rep" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/rep"
  export {
    dir       = "EXPORTS"
    power_off = true
  }
}
migration "new" {
  source     = source.fake.src
  converter  = converter.fake.conv
  target     = target.fake.kvm
  vm         = "/DC1/vm/new"
  export { dir = "EXPORTS" }
  depends_on = [migration.web["a"]]
}
migration "blk" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/blk"
  export { dir = "EXPORTS" }
}
`

// TestGraphPlan: graph -type=plan colours each migration by what the real
// plan does — one of each action, one blocked — in a cluster per wave,
// and Graphviz's dot renders it.
func TestGraphPlan(t *testing.T) {
	dir := fakeRepo(t, 0, graphBefore)
	ctx := context.Background()
	runCLI(t, ctx, "", false, "apply", "-auto-approve", dir).want(t, exitOK, "Apply complete: 5 migrated")
	main := filepath.Join(dir, "main.hcl")
	b, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(b), "\nmigration ")
	after := head + strings.ReplaceAll(graphAfter, "EXPORTS", filepath.Join(dir, "exports"))
	if err := os.WriteFile(main, []byte(after), 0o644); err != nil {
		t.Fatal(err)
	}
	vms := `{"/DC1/vm/blk": {"findings": [{"severity": "error", "summary": "VM is encrypted"}]}}`
	if err := os.WriteFile(filepath.Join(dir, "fakes", "src-vms.json"), []byte(vms), 0o644); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, ctx, "", false, "graph", "-type=plan", dir)
	r.want(t, exitOK,
		`label = "Plan: 2 to migrate, 1 to update, 1 to replace, 1 to remove. 1 blocked by errors."`,
		`"migration.db" [label = "~ migration.db", style = "filled", fillcolor = "#fff1b8", color = "#9a7b00"`,
		`"migration.rep" [label = "-/+ migration.rep", style = "filled", fillcolor = "#ffd3a8"`,
		`"migration.old" [label = "- migration.old", style = "filled", fillcolor = "#f8c4c4"`,
		`"migration.new" [label = "+ migration.new", style = "filled", fillcolor = "#c8f0c8"`,
		`"migration.web[\"a\"]" [label = "migration.web[\"a\"]", style = "filled", fillcolor = "#eeeeee"`,
		`"migration.blk" [label = "+ migration.blk\n(blocked)", style = "filled", fillcolor = "#c8f0c8", color = "#e00000", penwidth = "3"`,
		`"migration.new" -> "migration.web[\"a\"]"`,
		`"migration.web[\"b\"]" -> "migration.db"`,
		`"migration.old" -> "source.fake.src" [style = "dashed"`,
	)
	waves := map[string]string{`"migration.db"`: "1", `"migration.web[\"b\"]"`: "2", `"migration.new"`: "3", `"migration.old"`: "1"}
	for node, wave := range waves {
		cluster := `subgraph "cluster_wave_` + wave + `" {`
		_, rest, _ := strings.Cut(r.stdout, cluster)
		body, _, _ := strings.Cut(rest, "  }\n")
		if !strings.Contains(body, "    "+node+" [") {
			t.Errorf("%s is not in wave %s:\n%s", node, wave, r.stdout)
		}
	}
	svg := renderSVG(t, r.stdout)
	// 7 migrations and 3 plugins; 3 waves.
	if n := strings.Count(svg, `class="node"`); n != 10 {
		t.Errorf("%d nodes in the SVG, want 10", n)
	}
	if n := strings.Count(svg, `class="cluster"`); n != 3 {
		t.Errorf("%d clusters in the SVG, want 3", n)
	}

	// The state is unchanged: graph only plans.
	runCLI(t, ctx, "", false, "state", "-state-dir", filepath.Join(dir, ".hyperagent"), "list").want(t, exitOK, "migration.old")
}

// renderSVG runs Graphviz's dot on a DOT document; a document dot refuses
// fails the test, and so does a machine without dot (.ci/setup installs
// graphviz).
func renderSVG(t *testing.T, doc string) string {
	t.Helper()
	if _, err := exec.LookPath("dot"); err != nil {
		t.Fatal("dot not found: install graphviz (run .ci/setup)")
	}
	cmd := exec.Command("dot", "-Tsvg")
	cmd.Stdin = strings.NewReader(doc)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 {
		t.Fatalf("dot -Tsvg: %v\n%s\n%s", err, errb.String(), doc)
	}
	return out.String()
}
