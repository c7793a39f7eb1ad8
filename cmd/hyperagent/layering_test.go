package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/hypersdk/hyperagent"

// forbidden lists, for each layer, the layers of this module it must never
// import (docs/architecture.md, "Layers"). Test files count too, except the
// CLI's own.
var forbidden = map[string][]string{
	"schema":    {"reconcile", "plugins", "agent", "cmd", "examples"},
	"plugins":   {"reconcile", "agent", "cmd"},
	"reconcile": {"agent", "cmd"},
	"agent":     {"cmd"},
	"docs":      {"schema", "plugins", "reconcile", "agent", "cmd", "examples"},
}

func layerOf(pkg string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	top, _, _ := strings.Cut(rel, "/")
	return top
}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-test", "-f", `{{.ImportPath}}|{{join .Imports " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "|")
		pkg, _, _ = strings.Cut(pkg, " ") // "p [p.test]" for test variants
		bans := forbidden[layerOf(pkg)]
		checked++
		for _, imp := range strings.Fields(imports) {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			for _, ban := range bans {
				if layerOf(imp) == ban {
					t.Errorf("%s imports %s: the %s layer must not import %s", pkg, imp, layerOf(pkg), ban)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d packages listed; the check did not see the module", checked)
	}
}

func TestLayerOf(t *testing.T) {
	for pkg, want := range map[string]string{
		module + "/schema":          "schema",
		module + "/schema/addrs":    "schema",
		module + "/plugins/vsphere": "plugins",
		module + "/cmd/hyperagent":  "cmd",
		module + "/reconcile":       "reconcile",
	} {
		if got := layerOf(pkg); got != want {
			t.Errorf("layerOf(%s) = %q, want %q", pkg, got, want)
		}
	}
}
