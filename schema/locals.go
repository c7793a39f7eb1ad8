package schema

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// loadLocals evaluates every `locals` block's attributes in dependency
// order. A cycle is reported once, naming every local in it; the locals in
// a cycle (and those that depend on them) become unknown so they cause no
// further errors.
func (l *loader) loadLocals(blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	decls := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		attrs, ds := b.Body.JustAttributes()
		diags = append(diags, ds...)
		for _, name := range sortedKeys(attrs) {
			a := attrs[name]
			if ds := checkName("local value", name, a.NameRange); ds != nil {
				diags = append(diags, ds...)
				continue
			}
			if prev, dup := decls[name]; dup {
				diags = append(diags, duplicate("local value", name, a.NameRange, prev.NameRange))
				continue
			}
			decls[name] = a
		}
	}

	l.localDecls = decls

	// A local is evaluated with the locals it names (local.x, local["x"])
	// and no others, so one that uses the object of all locals, or picks
	// from it with a computed key, is refused: it would see some of them.
	deps := map[string][]string{}
	l.locals = map[string]cty.Value{}
	for _, name := range sortedKeys(decls) {
		for _, tr := range decls[name].Expr.Variables() {
			if tr.RootName() != "local" {
				continue
			}
			dep, ok := attrStep(tr, 1)
			if !ok {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid reference to local values",
					Detail:   "A local value can refer to other local values by name only, like local.NAME or local[\"NAME\"].",
					Subject:  tr.SourceRange().Ptr(),
				})
				l.locals[name] = cty.DynamicVal
				continue
			}
			if decls[dep] != nil {
				deps[name] = append(deps[name], dep)
			}
		}
	}
	order, cycles := topoSort(sortedKeys(decls), deps)
	for _, cyc := range cycles {
		names := make([]string, len(cyc))
		for i, n := range cyc {
			names[i] = "local." + n
			l.locals[n] = cty.DynamicVal
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cycle in local values",
			Detail:   fmt.Sprintf("The local values refer to each other in a cycle: %s → %s.", strings.Join(names, " → "), names[0]),
			Subject:  decls[cyc[0]].NameRange.Ptr(),
		})
	}
	// Each local is evaluated with an object of just the locals it refers
	// to: building the object of all locals for each one made loading
	// quadratic in their number.
	varObj := cty.ObjectVal(l.vars)
	for _, name := range order {
		if _, done := l.locals[name]; done {
			continue
		}
		refs := make(map[string]cty.Value, len(deps[name]))
		for _, d := range deps[name] {
			refs[d] = l.locals[d]
		}
		ctx := &hcl.EvalContext{
			Variables: map[string]cty.Value{"var": varObj, "local": cty.ObjectVal(refs)},
			Functions: l.funcs,
		}
		v, ds := l.eval(decls[name].Expr, ctx)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			v = cty.DynamicVal
		}
		l.locals[name] = v
	}
	return diags
}

// topoSort orders nodes so that each comes after its dependencies, visiting
// in the given order so the result is deterministic. Each cycle found is
// returned once, as the list of its members starting from the first met.
func topoSort(nodes []string, deps map[string][]string) (order []string, cycles [][]string) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string)
	visit = func(n string) {
		switch state[n] {
		case done:
			return
		case visiting:
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i] == n {
					cycles = append(cycles, append([]string(nil), stack[i:]...))
					break
				}
			}
			return
		}
		state[n] = visiting
		stack = append(stack, n)
		for _, d := range deps[n] {
			visit(d)
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		order = append(order, n)
	}
	for _, n := range nodes {
		visit(n)
	}
	return order, cycles
}
