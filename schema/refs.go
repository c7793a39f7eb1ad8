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
			if detail, ok := outOfScope[root]; ok {
				diags = append(diags, undeclared(tr, "Reference not available here", detail))
			}
			continue // otherwise HCL reports "Unknown variable"
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

// outOfScope explains names that exist in the language but not everywhere.
var outOfScope = map[string]string{
	"each":      "each.key and each.value exist only inside a migration block that has for_each, and not in for_each itself.",
	"source":    "Source blocks can be referred to from migration blocks only, not from variables, locals, the agent block or other plugin blocks.",
	"converter": "Converter blocks can be referred to from migration blocks only, not from variables, locals, the agent block or other plugin blocks.",
	"target":    "Target blocks can be referred to from migration blocks only, not from variables, locals, the agent block or other plugin blocks.",
	"migration": "Migrations have no values to refer to; order them with depends_on = [migration.NAME].",
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
