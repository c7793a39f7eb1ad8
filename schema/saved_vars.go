package schema

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// SavedVariables are the variable values a saved plan carries, given back
// to Load when the plan is applied (LoadOptions.Saved).
type SavedVariables struct {
	// From names the plan file, for messages.
	From string
	// Values holds each carried variable's value as cty JSON with its
	// type: {"value": …, "type": …}.
	Values map[string]json.RawMessage
	// Withheld names the variables that were set when the plan was made
	// and whose values are secret: the plan does not carry them, so they
	// must be given again.
	Withheld []string
}

// CarriedVariables is what a saved plan keeps of the variables: the value
// of every variable whose value is not secret, and the names of the
// variables set from outside (not left at their default) whose value is.
// A value is secret when the variable is sensitive, when it reaches a
// sensitive setting (a plugin's sensitive attribute, the state's
// conn_str) though not marked sensitive, or when it equals one of the
// configuration's secrets: no secret reaches the plan file. withheld is
// never nil.
func (c *Config) CarriedVariables() (values map[string]json.RawMessage, withheld []string) {
	values, withheld = map[string]json.RawMessage{}, []string{}
	secrets := map[string]bool{}
	for _, s := range c.Secrets() {
		secrets[s] = true
	}
	for _, name := range sortedKeys(c.Variables) {
		v := c.Variables[name]
		if !v.Value.IsWhollyKnown() {
			continue // a configuration loaded for checking only
		}
		if v.Sensitive || v.Secret || holdsSecret(v.Value, secrets) {
			if v.Set {
				withheld = append(withheld, name)
			}
			continue
		}
		b, err := ctyjson.Marshal(v.Value, cty.DynamicPseudoType)
		if err != nil {
			// A wholly known, unmarked value always encodes; should one
			// not, apply asks for it rather than guessing.
			withheld = append(withheld, name)
			continue
		}
		values[name] = b
	}
	return values, withheld
}

// holdsSecret says whether any string in v is one of secrets.
func holdsSecret(v cty.Value, secrets map[string]bool) bool {
	found := false
	collectStrings(v, func(s string) { found = found || secrets[s] })
	return found
}

// savedAssignments puts a saved plan's values into given. They win over
// the environment, which is not read for them (as Terraform does not read
// it when applying a saved plan); a -var or -var-file giving one of them
// another value is an error, since the plan was made with the saved one.
func (l *loader) savedAssignments(given map[string]assignment) hcl.Diagnostics {
	s := l.opts.Saved
	var diags hcl.Diagnostics
	for _, name := range sortedKeys(s.Values) {
		d := l.varDecls[name]
		if d == nil || d.bad {
			continue // the configuration changed: the plan's digest check says so
		}
		v, err := ctyjson.Unmarshal(s.Values[name], cty.DynamicPseudoType)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid saved plan",
				Detail:   fmt.Sprintf("The value of variable %q in the saved plan %s does not decode: %s. Make the plan again.", name, s.From, err),
			})
			continue
		}
		if a := given[name]; a.set && !a.env && differs(d, a.val, v) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value conflicts with the saved plan",
				Detail: fmt.Sprintf("The saved plan %s was made with another value of variable %q, and it is applied with the values it was made with. "+
					"Drop this value, or make a new plan with it.", s.From, name),
				Subject: a.subject,
			})
			continue
		}
		given[name] = assignment{set: true, val: v}
	}
	return diags
}

// differs says whether two values given for d are different once
// converted to its type; values that do not convert are not compared
// (their error is reported where they were given).
func differs(d *varDecl, a, b cty.Value) bool {
	if !a.IsWhollyKnown() {
		return false
	}
	av, err := typed(d, a)
	if err != nil {
		return false
	}
	bv, err := typed(d, b)
	if err != nil {
		return false
	}
	return !av.RawEquals(bv)
}

// withheldValue is the error for a variable whose secret value the saved
// plan does not carry and that was not given again.
func (l *loader) withheldValue(d *varDecl) hcl.Diagnostics {
	s := l.opts.Saved
	if s == nil || !slices.Contains(s.Withheld, d.v.Name) {
		return nil
	}
	name := d.v.Name
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "No value for a secret variable",
		Detail: fmt.Sprintf("The saved plan %s was made with a value of variable %q that is secret, so the plan does not carry it (secrets are never written). "+
			"Give it again: -var '%s=…', a -var-file, or %s%s.", s.From, name, name, EnvVarPrefix, name),
		Subject: d.v.DeclRange.Ptr(),
	}}
}
