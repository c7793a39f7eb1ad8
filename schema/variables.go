package schema

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// EnvVarPrefix prefixes environment variables that set input variables:
// HYPERAGENT_VAR_vcenter_password sets var.vcenter_password.
const EnvVarPrefix = "HYPERAGENT_VAR_"

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "condition", Required: true},
		{Name: "error_message", Required: true},
	},
}

// varDecl is a `variable` block before its value is known.
type varDecl struct {
	v           *Variable
	defaults    *typeexpr.Defaults
	def         cty.Value // cty.NilVal when there is no default
	validations []*hcl.Block
	// bad is set when the declaration itself has errors: its value is then
	// unknown and nothing more is reported about it.
	bad bool
}

// assignment is a value given for a variable and where it was given.
type assignment struct {
	set     bool
	val     cty.Value
	subject *hcl.Range // nil for -var and the environment
	env     bool       // given by the environment
}

func (l *loader) loadVariables(blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	l.varDecls = map[string]*varDecl{}
	for _, b := range blocks {
		name := b.Labels[0]
		if ds := checkName("variable", name, b.LabelRanges[0]); ds != nil {
			diags = append(diags, ds...)
			continue
		}
		if prev, dup := l.varDecls[name]; dup {
			diags = append(diags, duplicate("variable", name, b.DefRange, prev.v.DeclRange))
			continue
		}
		d, ds := declareVariable(b)
		diags = append(diags, ds...)
		l.varDecls[name] = d
	}
	given, ds := l.assignments()
	diags = append(diags, ds...)

	l.vars = map[string]cty.Value{}
	for _, name := range sortedKeys(l.varDecls) {
		d := l.varDecls[name]
		if ds := l.withheldValue(d); ds != nil && !given[name].set && !d.bad {
			diags = append(diags, ds...)
			l.vars[name] = cty.DynamicVal
			continue
		}
		val, ds := finalValue(d, given[name], l.opts.UnsetUnknown)
		diags = append(diags, ds...)
		if d.bad || ds.HasErrors() {
			l.vars[name] = cty.DynamicVal
			continue
		}
		d.v.Value, d.v.Set = val, given[name].set
		l.cfg.Variables[name] = d.v
		l.vars[name] = markIf(val, d.v.Sensitive)
	}
	for _, name := range sortedKeys(l.varDecls) {
		if d := l.varDecls[name]; l.cfg.Variables[name] != nil {
			diags = append(diags, l.validate(d, given[name])...)
		}
	}
	return diags
}

func declareVariable(b *hcl.Block) (*varDecl, hcl.Diagnostics) {
	content, diags := b.Body.Content(variableSchema)
	d := &varDecl{
		v:           &Variable{Name: b.Labels[0], Type: cty.DynamicPseudoType, DeclRange: b.DefRange},
		def:         cty.NilVal,
		validations: content.Blocks,
	}
	if a, ok := content.Attributes["type"]; ok {
		ty, defaults, ds := typeexpr.TypeConstraintWithDefaults(a.Expr)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			d.v.Type, d.defaults = ty, defaults
		} else {
			d.bad = true
		}
	}
	if a, ok := content.Attributes["description"]; ok {
		v, ds := constant(a, cty.String)
		diags = append(diags, ds...)
		if !ds.HasErrors() && !v.IsNull() {
			d.v.Description = v.AsString()
		}
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		v, ds := constant(a, cty.Bool)
		diags = append(diags, ds...)
		if !ds.HasErrors() && !v.IsNull() {
			d.v.Sensitive = v.True()
		}
	}
	if a, ok := content.Attributes["default"]; ok {
		v, ds := a.Expr.Value(nil)
		diags = append(diags, ds...)
		if !ds.HasErrors() {
			cv, err := typed(d, v)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid default value for variable",
					Detail:   fmt.Sprintf("This default value is not compatible with the variable's type constraint: %s.", err),
					Subject:  a.Expr.Range().Ptr(),
				})
			} else {
				d.def = cv
			}
		}
	}
	if diags.HasErrors() {
		d.bad = true
	}
	return d, diags
}

// constant evaluates an attribute that may not refer to anything, strictly
// converted to ty.
func constant(a *hcl.Attribute, ty cty.Type) (cty.Value, hcl.Diagnostics) {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return cty.NullVal(ty), diags
	}
	cv, err := convertStrict(v, ty)
	if err != nil {
		return cty.NullVal(ty), hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, err),
			Subject:  a.Expr.Range().Ptr(),
		}}
	}
	return cv, nil
}

// typed applies the declared type's optional-attribute defaults and
// converts to it, as Terraform does for variables.
func typed(d *varDecl, v cty.Value) (cty.Value, error) {
	if d.defaults != nil {
		v = d.defaults.Apply(v)
	}
	ty, ok := narrow(d.v.Type, v.Type())
	if !ok {
		return cty.NilVal, fmt.Errorf("all %s elements must have the same type", collectionKind(ty))
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s", convertMessage(err))
	}
	return cv, nil
}

// assignments gathers the values given from outside, by precedence: the
// environment, then -var-file files in order, then -var in order; a later
// one wins. A saved plan's values (LoadOptions.Saved) win over them all.
func (l *loader) assignments() (map[string]assignment, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	given := map[string]assignment{}
	for _, kv := range l.opts.Env {
		k, raw, ok := strings.Cut(kv, "=")
		name, isVar := strings.CutPrefix(k, EnvVarPrefix)
		if !ok || !isVar || l.varDecls[name] == nil {
			continue // like Terraform: the environment may hold variables for other repos
		}
		v, ds := parseRaw(l.varDecls[name], raw, "environment variable "+k)
		diags = append(diags, ds...)
		given[name] = assignment{set: true, val: v, env: true}
	}
	for _, path := range l.opts.VarFiles {
		diags = append(diags, l.varFile(path, given)...)
	}
	for _, arg := range l.opts.Vars {
		name, raw, ok := strings.Cut(arg, "=")
		if !ok || name == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid -var option",
				Detail:   fmt.Sprintf("The given -var option %s is not correctly specified. It must be a variable name and value separated by an equals sign, like -var=\"key=value\".", quote(arg)),
			})
			continue
		}
		d := l.varDecls[name]
		if d == nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("A variable named %s was assigned on the command line, but the configuration does not declare a variable of that name. To use this value, add a \"variable\" block to the configuration.", quote(name)),
			})
			continue
		}
		v, ds := parseRaw(d, raw, "-var "+name)
		diags = append(diags, ds...)
		given[name] = assignment{set: true, val: v}
	}
	if l.opts.Saved != nil {
		diags = append(diags, l.savedAssignments(given)...)
	}
	return given, diags
}

func (l *loader) varFile(path string, given map[string]assignment) hcl.Diagnostics {
	f, diags := l.parseFile(path, "variables file")
	if diags.HasErrors() {
		return diags
	}
	attrs, ds := f.Body.JustAttributes()
	diags = append(diags, ds...)
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		if l.varDecls[name] == nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("A variable named %q was assigned in %s, but the configuration does not declare a variable of that name.", name, path),
				Subject:  a.NameRange.Ptr(),
			})
			continue
		}
		v, ds := a.Expr.Value(nil)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			v = cty.DynamicVal
		}
		given[name] = assignment{set: true, val: v, subject: a.Expr.Range().Ptr()}
	}
	return diags
}

// parseRaw interprets a value given as text (-var, the environment): a
// primitive or untyped variable takes the text as a string, a complex type
// parses it as an HCL expression.
func parseRaw(d *varDecl, raw, from string) (cty.Value, hcl.Diagnostics) {
	ty := d.v.Type
	if ty.IsPrimitiveType() || ty == cty.DynamicPseudoType {
		return cty.StringVal(raw), nil
	}
	return parseExpressionValue(raw, from)
}

// finalValue picks the given value or the default and converts it.
func finalValue(d *varDecl, a assignment, unsetUnknown bool) (cty.Value, hcl.Diagnostics) {
	if d.bad {
		return cty.DynamicVal, nil
	}
	if !a.set {
		if isNil(d.def) && unsetUnknown {
			return cty.UnknownVal(d.v.Type), nil
		}
		if isNil(d.def) {
			return cty.DynamicVal, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "No value for required variable",
				Detail:   fmt.Sprintf("The input variable %q is not set, and has no default value. Use a -var or -var-file command line argument, or set %s%s, to provide a value.", d.v.Name, EnvVarPrefix, d.v.Name),
				Subject:  d.v.DeclRange.Ptr(),
			}}
		}
		return d.def, nil
	}
	if !a.val.IsWhollyKnown() {
		return cty.DynamicVal, hcl.Diagnostics{} // already reported where it was parsed
	}
	v, err := typed(d, a.val)
	if err != nil {
		subject := a.subject
		if subject == nil {
			subject = d.v.DeclRange.Ptr()
		}
		return cty.DynamicVal, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for input variable",
			Detail:   fmt.Sprintf("The value given for variable %q is not suitable: %s.", d.v.Name, err),
			Subject:  subject,
		}}
	}
	return v, nil
}

// validate runs the variable's validation rules against its final value.
func (l *loader) validate(d *varDecl, a assignment) hcl.Diagnostics {
	var diags hcl.Diagnostics
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(l.vars)},
		Functions: l.funcs,
	}
	for _, b := range d.validations {
		content, ds := b.Body.Content(validationSchema)
		diags = append(diags, ds...)
		cond, msg := content.Attributes["condition"], content.Attributes["error_message"]
		if ds.HasErrors() || cond == nil || msg == nil {
			continue
		}
		ok, ds := cond.Expr.Value(ctx)
		diags = append(diags, ds...)
		if ds.HasErrors() || !ok.IsWhollyKnown() {
			continue
		}
		ok, _ = ok.Unmark()
		if ok, err := convertStrict(ok, cty.Bool); err != nil || ok.IsNull() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid validation condition",
				Detail:   "The condition must be a bool, true when the value is valid.",
				Subject:  cond.Expr.Range().Ptr(),
			})
			continue
		} else if ok.True() {
			continue
		}
		text := "The value is not valid."
		if m, ds := msg.Expr.Value(ctx); !ds.HasErrors() && m.IsWhollyKnown() {
			if m, err := convertStrict(m, cty.String); err == nil && !m.IsNull() {
				if m.IsMarked() {
					text = "The value is not valid. (The error message is derived from a sensitive value, so it is not shown.)"
				} else {
					text = clip(m.AsString())
				}
			}
		}
		subject := a.subject
		if subject == nil {
			subject = d.v.DeclRange.Ptr()
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid value for variable",
			Detail:   fmt.Sprintf("%s\n\nThis was checked by the validation rule at %s.", text, cond.Expr.Range()),
			Subject:  subject,
		})
	}
	return diags
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
