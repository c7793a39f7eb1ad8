package reconcile

import "testing"

// TestWaves: a migration's wave is its depth in the depends_on graph.
func TestWaves(t *testing.T) {
	p := &Plan{Changes: []Change{
		{Address: "migration.app", DependsOn: []string{"migration.db", "migration.cache"}},
		{Address: "migration.cache", DependsOn: []string{"migration.db"}},
		{Address: "migration.db"},
		{Address: "migration.web", DependsOn: []string{"migration.app"}},
		{Address: "migration.lone", DependsOn: []string{"migration.gone"}},
	}}
	got := p.Waves()
	want := map[string]int{"migration.db": 0, "migration.cache": 1, "migration.app": 2, "migration.web": 3, "migration.lone": 1}
	for a, w := range want {
		if got[a] != w {
			t.Errorf("%s: wave %d, want %d", a, got[a], w)
		}
	}
}
