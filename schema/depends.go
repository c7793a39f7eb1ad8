package schema

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// parseDependsOn reads depends_on = [migration.db, migration.web["x"]]
// statically: the entries are addresses, never evaluated.
func parseDependsOn(a *hcl.Attribute) ([]depRef, hcl.Diagnostics) {
	exprs, diags := hcl.ExprList(a.Expr)
	if diags.HasErrors() {
		return nil, diags
	}
	var deps []depRef
	for _, e := range exprs {
		invalid := &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid depends_on reference",
			Detail:   `Each depends_on entry must be a reference to a migration, like migration.db or migration.web["web-01"].`,
			Subject:  e.Range().Ptr(),
		}
		tr, ds := hcl.AbsTraversalForExpr(e)
		if ds.HasErrors() || tr.RootName() != "migration" || len(tr) < 2 || len(tr) > 3 {
			diags = append(diags, invalid)
			continue
		}
		step, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			diags = append(diags, invalid)
			continue
		}
		addr := addrs.Migration{Name: step.Name}
		if len(tr) == 3 {
			idx, ok := tr[2].(hcl.TraverseIndex)
			if !ok || idx.Key.Type() != cty.String || idx.Key.IsNull() {
				diags = append(diags, invalid)
				continue
			}
			addr.Key, addr.HasKey = idx.Key.AsString(), true
		}
		deps = append(deps, depRef{addr: addr, rng: e.Range()})
	}
	return deps, diags
}

// checkDependsOn reports references to migrations that do not exist and
// cycles between migration blocks. A block that depends on one of its own
// instances is a cycle too: instances of one block are one wave.
func checkDependsOn(order []*migrationBlock, byName map[string]*migrationBlock) hcl.Diagnostics {
	var diags hcl.Diagnostics
	names := make([]string, 0, len(order))
	edges := map[string][]string{}
	where := map[[2]string]hcl.Range{}
	for _, mb := range order {
		names = append(names, mb.name)
		for _, d := range mb.deps {
			target := byName[d.addr.Name]
			switch {
			case target == nil:
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to undeclared migration",
					Detail:   fmt.Sprintf("No migration %q block is declared.", d.addr.Name),
					Subject:  d.rng.Ptr(),
				})
				continue
			case d.addr.HasKey && !target.hasForEach:
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Unexpected instance key",
					Detail:   fmt.Sprintf("migration.%s has no for_each, so it has no instance %q; refer to it as migration.%s.", d.addr.Name, d.addr.Key, d.addr.Name),
					Subject:  d.rng.Ptr(),
				})
				continue
			case d.addr.HasKey && target.keysKnown && !target.keys[d.addr.Key]:
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Reference to undeclared migration instance",
					Detail:   fmt.Sprintf("migration.%s has no instance with the key %q.", d.addr.Name, d.addr.Key),
					Subject:  d.rng.Ptr(),
				})
				continue
			}
			key := [2]string{mb.name, d.addr.Name}
			if _, seen := where[key]; !seen {
				where[key] = d.rng
				edges[mb.name] = append(edges[mb.name], d.addr.Name)
			}
		}
	}
	_, cycles := topoSort(names, edges)
	for _, cyc := range cycles {
		path := make([]string, len(cyc)+1)
		for i, n := range cyc {
			path[i] = "migration." + n
		}
		path[len(cyc)] = path[0]
		next := cyc[0]
		if len(cyc) > 1 {
			next = cyc[1]
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cycle in depends_on",
			Detail:   fmt.Sprintf("The migrations depend on each other in a cycle, so none of them could start: %s.", strings.Join(path, " → ")),
			Subject:  where[[2]string{cyc[0], next}].Ptr(),
		})
	}
	return diags
}
