package schema

import (
	"fmt"
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// validName is addrs.ValidName: a name the config accepts always prints
// and parses back as an address.
func validName(s string) bool { return addrs.ValidName(s) }

func checkName(what, name string, rng hcl.Range) hcl.Diagnostics {
	if validName(name) {
		return nil
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid %s name", what),
		Detail:   fmt.Sprintf("%s is not a valid name. A name must start with a letter or underscore and may contain only letters, digits, underscores, and dashes.", quote(name)),
		Subject:  rng.Ptr(),
	}}
}

func duplicate(what, name string, rng, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s declaration", what),
		Detail:   fmt.Sprintf("A %s named %s was already declared at %s. Names must be unique.", what, quote(name), prev),
		Subject:  rng.Ptr(),
	}
}

// isNil reports whether v is cty.NilVal (no value at all). Comparing values
// with == can panic, so compare the type: NilType's implementation is nil.
func isNil(v cty.Value) bool { return v.Type() == cty.NilType }

// parseExpressionValue parses text given outside any file (-var) as an
// expression that may not refer to anything.
func parseExpressionValue(raw, from string) (cty.Value, hcl.Diagnostics) {
	name := "<value for " + from + ">"
	if d := checkExpressionNesting([]byte(raw), name); d != nil {
		return cty.DynamicVal, hcl.Diagnostics{d}
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), name, hcl.InitialPos)
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	return v, nil
}

// pathString renders a cty.Path the way users write it: fix.grub,
// disk[0].size, network_map["VM Network"].
func pathString(p cty.Path) string {
	var b strings.Builder
	for _, step := range p {
		switch s := step.(type) {
		case cty.GetAttrStep:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.Name)
		case cty.IndexStep:
			b.WriteString("[" + keyString(s.Key) + "]")
		}
	}
	return b.String()
}

func keyString(k cty.Value) string {
	if k.IsNull() || !k.IsKnown() {
		return "?"
	}
	switch k.Type() {
	case cty.String:
		return fmt.Sprintf("%q", k.AsString())
	case cty.Number:
		return k.AsBigFloat().Text('f', -1)
	}
	return "?"
}

// asInt returns a known whole number as an int64, or false.
func asInt(v cty.Value) (int64, bool) {
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.Number {
		return 0, false
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		return 0, false
	}
	i, acc := bf.Int64()
	return i, acc == big.Exact
}

// sentence turns a message fragment ("a domain name cannot be empty") into
// a diagnostic's detail: capitalised, ending with a period.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
