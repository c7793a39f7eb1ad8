package schema

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// eval evaluates expr after checking its references to variables, locals
// and plugin blocks, so that a reference to something never declared gets
// a message that says so rather than HCL's generic "Unsupported attribute".
// A failed reference makes the value unknown without evaluating.
func (l *loader) eval(expr hcl.Expression, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	if diags := l.checkRefs(expr, ctx); diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	return expr.Value(ctx)
}

func (l *loader) checkRefs(expr hcl.Expression, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		if _, inScope := ctx.Variables[root]; !inScope {
			continue // HCL reports "Unknown variable" with the names in scope
		}
		switch root {
		case "var":
			if name, ok := attrStep(tr, 1); ok && l.varDecls[name] == nil {
				diags = append(diags, undeclared(tr, "Reference to undeclared input variable",
					fmt.Sprintf("An input variable named %q has not been declared. Declare it with a variable \"%s\" {} block.", name, name)))
			}
		case "local":
			if name, ok := attrStep(tr, 1); ok {
				if _, declared := l.locals[name]; !declared {
					diags = append(diags, undeclared(tr, "Reference to undeclared local value",
						fmt.Sprintf("A local value named %q has not been declared.", name)))
				}
			}
		case string(addrs.KindSource), string(addrs.KindConverter), string(addrs.KindTarget):
			typ, ok1 := attrStep(tr, 1)
			name, ok2 := attrStep(tr, 2)
			if !ok1 || !ok2 {
				continue
			}
			a := addrs.Plugin{Kind: addrs.Kind(root), Type: typ, Name: name}
			if _, declared := l.declared[a]; !declared {
				diags = append(diags, undeclared(tr, fmt.Sprintf("Reference to undeclared %s", root),
					fmt.Sprintf("No %s %q %q block is declared.", root, typ, name)))
			}
		}
	}
	return diags
}

func attrStep(tr hcl.Traversal, i int) (string, bool) {
	if len(tr) <= i {
		return "", false
	}
	switch s := tr[i].(type) {
	case hcl.TraverseAttr:
		return s.Name, true
	case hcl.TraverseIndex:
		if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
			return s.Key.AsString(), true
		}
	}
	return "", false
}

func undeclared(tr hcl.Traversal, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   detail,
		Subject:  tr.SourceRange().Ptr(),
	}
}
