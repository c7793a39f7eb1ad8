package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/reconcile"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestPlanTextGolden renders the engine's golden plans (the JSON values
// in reconcile/testdata/plan, made by its tests over the fakes) for people:
// the human view and -json come from the same value.
func TestPlanTextGolden(t *testing.T) {
	files, err := filepath.Glob("../../reconcile/testdata/plan/*.json")
	if err != nil || len(files) < 5 {
		t.Fatalf("golden plans: %v (%v)", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := reconcile.DecodePlan(b)
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			if err := renderPlan(&got, p); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "plan", name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
			}
		})
	}
}
