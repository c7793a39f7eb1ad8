package schema

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// toset, tolist and tomap give what cty's own conversions give, errors
// included: only the way the element type is found differs.
func TestToFuncsMatchStdlib(t *testing.T) {
	obj := func(m map[string]cty.Value) cty.Value { return cty.ObjectVal(m) }
	inputs := map[string]cty.Value{
		"strings":        cty.TupleVal([]cty.Value{cty.StringVal("b"), cty.StringVal("a"), cty.StringVal("b")}),
		"mixed":          cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.NumberIntVal(1), cty.True}),
		"unconvertible":  cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.ListVal([]cty.Value{cty.StringVal("b")})}),
		"objects":        cty.TupleVal([]cty.Value{obj(map[string]cty.Value{"a": cty.NumberIntVal(1)}), obj(map[string]cty.Value{"b": cty.StringVal("x")})}),
		"same objects":   cty.TupleVal([]cty.Value{obj(map[string]cty.Value{"a": cty.NumberIntVal(1)}), obj(map[string]cty.Value{"a": cty.NumberIntVal(2)})}),
		"lists":          cty.TupleVal([]cty.Value{cty.ListVal([]cty.Value{cty.NumberIntVal(1)}), cty.ListValEmpty(cty.String)}),
		"with null":      cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.NullVal(cty.String)}),
		"with unknown":   cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.UnknownVal(cty.String)}),
		"marked element": cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("s").Mark(sensitiveMark)}),
		"empty tuple":    cty.EmptyTupleVal,
		"object":         obj(map[string]cty.Value{"a": cty.StringVal("x"), "b": cty.NumberIntVal(2)}),
		"object of objects": obj(map[string]cty.Value{
			"a": obj(map[string]cty.Value{"x": cty.StringVal("1")}),
			"b": obj(map[string]cty.Value{"x": cty.NumberIntVal(2)}),
		}),
		"empty object": cty.EmptyObjectVal,
		"list":         cty.ListVal([]cty.Value{cty.StringVal("a")}),
		"string":       cty.StringVal("a"),
		"null":         cty.NullVal(cty.DynamicPseudoType),
		"unknown":      cty.DynamicVal,
	}
	for _, want := range []cty.Type{cty.List(cty.DynamicPseudoType), cty.Set(cty.DynamicPseudoType), cty.Map(cty.DynamicPseudoType)} {
		ours, theirs := hideSensitiveErrors(makeToFunc(want)), stdlib.MakeToFunc(want)
		for name, in := range inputs {
			got, gotErr := ours.Call([]cty.Value{in})
			exp, expErr := theirs.Call([]cty.Value{in})
			if (gotErr == nil) != (expErr == nil) || (gotErr != nil && gotErr.Error() != expErr.Error() && !in.ContainsMarked()) {
				t.Errorf("%s of %s: error %v, stdlib %v", want.FriendlyNameForConstraint(), name, gotErr, expErr)
				continue
			}
			if gotErr == nil && !got.RawEquals(exp) {
				t.Errorf("%s of %s = %#v, stdlib %#v", want.FriendlyNameForConstraint(), name, got, exp)
			}
		}
	}
}

// A variable of a collection of any type converts its value as cty does.
func TestVariableOfAnyElementType(t *testing.T) {
	tests := map[string]struct {
		typ, value string
		want       cty.Value
		err        string
	}{
		"list(any)":    {typ: "list(any)", value: `["a", 1]`, want: cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("1")})},
		"set(any)":     {typ: "set(any)", value: `["b", "a", "b"]`, want: cty.SetVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")})},
		"map(any)":     {typ: "map(any)", value: `{ a = 1, b = 2 }`, want: cty.MapVal(map[string]cty.Value{"a": cty.NumberIntVal(1), "b": cty.NumberIntVal(2)})},
		"mixed, fails": {typ: "list(any)", value: `["a", ["b"]]`, err: "all list elements must have the same type"},
		"map of lists": {typ: "map(any)", value: `{ a = ["x"], b = [] }`, want: cty.MapVal(map[string]cty.Value{"a": cty.ListVal([]cty.Value{cty.StringVal("x")}), "b": cty.ListValEmpty(cty.String)})},
		"list(string)": {typ: "list(string)", value: `["a", "b"]`, want: cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")})},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeRepo(t, map[string]string{"main.hcl": "variable \"v\" {\n  type = " + tt.typ + "\n  default = " + tt.value + "\n}\n"})
			cfg, _, diags := Load(LoadOptions{Dir: dir, Plugins: testPlugins})
			if tt.err != "" {
				if !strings.Contains(diagText(diags), tt.err) {
					t.Fatalf("want %q, got:\n%s", tt.err, diagText(diags))
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diagText(diags))
			}
			if got := cfg.Variables["v"].Value; !got.RawEquals(tt.want) {
				t.Errorf("value %#v, want %#v", got, tt.want)
			}
		})
	}
}
