package schema

import (
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// cty unifies the element types of a tuple or object (to convert it to a
// list, set or map "of any single type") by comparing every pair of
// element types: toset() of a 100,000-element list made 5·10⁹ comparisons.
// The result depends only on which types occur, not on how often, so
// narrow unifies the distinct types once and asks cty for a conversion to
// the concrete type, which is linear.

// makeToFunc is stdlib.MakeToFunc(want), except that a conversion to a
// collection of any single type unifies the distinct element types only.
func makeToFunc(want cty.Type) function.Function {
	std := stdlib.MakeToFunc(want)
	if !want.IsCollectionType() || want.ElementType() != cty.DynamicPseudoType {
		return std
	}
	spec := &function.Spec{
		Description: std.Description(),
		Params:      std.Params(),
		Type: func(args []cty.Value) (cty.Type, error) {
			got := args[0].Type()
			narrowed, ok := narrow(want, got)
			if !ok {
				return cty.NilType, function.NewArgErrorf(0, "cannot convert %s to %s", got.FriendlyName(), want.FriendlyNameForConstraint())
			}
			return stdlib.MakeToFunc(narrowed).ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, retType cty.Type) (cty.Value, error) {
			narrowed, _ := narrow(want, args[0].Type())
			return stdlib.MakeToFunc(narrowed).Call(args)
		},
	}
	return function.New(spec)
}

// narrow replaces the element type of want, a list, set or map of
// cty.DynamicPseudoType, by the type the elements of a value of type got
// unify to, when got is a tuple (for a list or set) or an object (for a
// map). It returns want itself for any other pair, and false when the
// element types do not unify.
func narrow(want, got cty.Type) (cty.Type, bool) {
	if !want.IsCollectionType() || want.ElementType() != cty.DynamicPseudoType {
		return want, true
	}
	var etys []cty.Type
	switch {
	case (want.IsListType() || want.IsSetType()) && got.IsTupleType():
		etys = got.TupleElementTypes()
	case want.IsMapType() && got.IsObjectType():
		for _, t := range got.AttributeTypes() {
			etys = append(etys, t)
		}
	default:
		return want, true
	}
	if len(etys) == 0 {
		return want, true
	}
	ety, _ := convert.UnifyUnsafe(distinctTypes(etys))
	switch {
	case ety == cty.NilType:
		return want, false
	case want.IsListType():
		return cty.List(ety), true
	case want.IsSetType():
		return cty.Set(ety), true
	default:
		return cty.Map(ety), true
	}
}

// collectionKind names the kind of a collection type: list, set or map.
func collectionKind(ty cty.Type) string {
	switch {
	case ty.IsListType():
		return "list"
	case ty.IsSetType():
		return "set"
	}
	return "map"
}

// distinctTypes returns each type of tys once, in the order first met.
func distinctTypes(tys []cty.Type) []cty.Type {
	var out []cty.Type
	seen := map[string]bool{}
	for i, t := range tys {
		if i > 0 && t.Equals(tys[i-1]) {
			continue // the common case: every element has the same type
		}
		k := t.GoString()
		if !seen[k] {
			seen[k] = true
			out = append(out, t)
		}
	}
	return out
}
