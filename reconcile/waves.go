package reconcile

// Waves gives each change its depth in the depends_on graph: 0 without
// dependencies, else one more than its deepest dependency. A dependency
// the plan does not hold counts as wave 0; a cycle (which the
// configuration refuses) cannot loop.
func (p *Plan) Waves() map[string]int {
	deps := make(map[string][]string, len(p.Changes))
	for _, c := range p.Changes {
		deps[c.Address] = c.DependsOn
	}
	out := make(map[string]int, len(deps))
	visiting := map[string]bool{}
	var wave func(a string) int
	wave = func(a string) int {
		if w, ok := out[a]; ok {
			return w
		}
		if visiting[a] {
			return 0
		}
		visiting[a] = true
		w := 0
		for _, d := range deps[a] {
			if _, known := deps[d]; known {
				w = max(w, wave(d)+1)
			} else {
				w = max(w, 1)
			}
		}
		delete(visiting, a)
		out[a] = w
		return w
	}
	for a := range deps {
		wave(a)
	}
	return out
}
