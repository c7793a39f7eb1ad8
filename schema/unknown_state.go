package schema

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// UnknownSetting is a setting left unknown by unset variables.
type UnknownSetting struct {
	Name  string   // "agent.state_dir", "state.conn_str"
	Vars  []string // the unset variables it uses, directly or through locals
	Alt   string   // another way to give it, if any
	Range hcl.Range
}

// unknownStateSetting records that block's attribute name, which places
// the state, has no known value.
func (l *loader) unknownStateSetting(body hcl.Body, block, name, alt string) {
	content, _, _ := body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: name}}})
	a := content.Attributes[name]
	if a == nil {
		return // a default: always known
	}
	l.cfg.StateUnknown = append(l.cfg.StateUnknown, UnknownSetting{
		Name: block + "." + name, Vars: l.unsetVars(a.Expr), Alt: alt, Range: a.Expr.Range(),
	})
}

// unsetVars lists the variables without a known value that expr uses,
// following locals.
func (l *loader) unsetVars(expr hcl.Expression) []string {
	var out []string
	for _, name := range l.varsOf(expr, map[string]bool{}) {
		if v := l.vars[name]; !v.IsWhollyKnown() {
			out = append(out, name)
		}
	}
	return out
}

// varsOf lists the declared variables expr uses, following locals,
// sorted; seen holds the references already followed.
func (l *loader) varsOf(expr hcl.Expression, seen map[string]bool) []string {
	var out []string
	for _, tr := range expr.Variables() {
		name, ok := attrStep(tr, 1)
		if !ok || seen[tr.RootName()+"."+name] {
			continue
		}
		seen[tr.RootName()+"."+name] = true
		switch tr.RootName() {
		case "var":
			if _, declared := l.vars[name]; declared {
				out = append(out, name)
			}
		case "local":
			if a := l.localDecls[name]; a != nil {
				out = append(out, l.varsOf(a.Expr, seen)...)
			}
		}
	}
	sort.Strings(out)
	return out
}

// StateLocationDiagnostics is an error for each setting that places the
// state (agent.state_dir, the state block's backend, conn_str and
// workspace) whose value is unknown because variables it uses are not
// set: a configuration loaded with LoadOptions.UnsetUnknown, as the
// commands that only need the state load it, must not guess where the
// state is. Each names the variables to give and how.
func (c *Config) StateLocationDiagnostics() hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, u := range c.StateUnknown {
		if u.Name == "agent.state_dir" && c.State.Backend == BackendPG {
			continue // the pg backend does not use it
		}
		detail := fmt.Sprintf("%s decides where the state is, and it has no value: ", u.Name)
		var ways []string
		for _, v := range u.Vars {
			ways = append(ways, fmt.Sprintf("-var '%s=…' (or a -var-file, or %s%s)", v, EnvVarPrefix, v))
		}
		switch len(u.Vars) {
		case 0:
			detail += "it depends on values that are not known without the variables it uses. Give them with -var, a -var-file or the environment"
		case 1:
			detail += fmt.Sprintf("it uses variable %q, which is not set. Give it: %s", u.Vars[0], ways[0])
		default:
			detail += fmt.Sprintf("it uses variables %s, which are not set. Give them: %s", quoteAll(u.Vars), strings.Join(ways, "; "))
		}
		if u.Alt != "" {
			detail += "; " + u.Alt
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "The state's location needs a variable",
			Detail:   detail + ". No other variable is needed to read or edit the state.",
			Subject:  u.Range.Ptr(),
		})
	}
	return diags
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
