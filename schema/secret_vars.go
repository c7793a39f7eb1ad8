package schema

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// noteSecretVars records the variables whose values reach a sensitive
// setting of a plugin block (the attribute, or the nested block, that
// each sensitive path starts at) even though they are not marked
// sensitive themselves: their values are secrets all the same, and a
// saved plan must not carry them (CarriedVariables).
func (l *loader) noteSecretVars(body hcl.Body, paths []cty.Path) {
	for _, p := range paths {
		if len(p) == 0 {
			continue
		}
		step, ok := p[0].(cty.GetAttrStep)
		if !ok {
			continue
		}
		for _, e := range expressionsAt(body, step.Name) {
			l.noteSecretExpr(e)
		}
	}
}

// noteSecretExpr marks the variables expr uses (through locals too) as
// holding secrets (Variable.Secret).
func (l *loader) noteSecretExpr(expr hcl.Expression) {
	for _, name := range l.varsOf(expr, map[string]bool{}) {
		if v := l.cfg.Variables[name]; v != nil {
			v.Secret = true
		}
	}
}

// expressionsAt returns the expression of body's attribute name, or every
// expression inside its blocks of type name.
func expressionsAt(body hcl.Body, name string) []hcl.Expression {
	var out []hcl.Expression
	attrs, _, _ := body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: name}}})
	if a := attrs.Attributes[name]; a != nil {
		out = append(out, a.Expr)
	}
	blocks, _, _ := body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: name}}})
	for _, b := range blocks.Blocks {
		out = append(out, allExpressions(b.Body)...)
	}
	return out
}

// allExpressions returns every expression in body, nested blocks
// included. A JSON body's nested objects are attributes' expressions.
func allExpressions(body hcl.Body) []hcl.Expression {
	var out []hcl.Expression
	if sb, ok := body.(*hclsyntax.Body); ok {
		for _, a := range sb.Attributes {
			out = append(out, a.Expr)
		}
		for _, b := range sb.Blocks {
			out = append(out, allExpressions(b.Body)...)
		}
		return out
	}
	attrs, _ := body.JustAttributes()
	for _, a := range attrs {
		out = append(out, a.Expr)
	}
	return out
}
