package schema

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// sensitiveMark marks values that came from a sensitive variable or a
// plugin attribute declared sensitive. Marks follow values through
// expressions and functions, so anything derived from a secret stays marked.
type markKey string

const sensitiveMark = markKey("sensitive")

// sensitiveSources says, in messages, where sensitive values come from.
const sensitiveSources = "Sensitive values are those of sensitive variables and plugin attributes, what file() and templatefile() read from outside the configuration directory, and anything derived from them."

// blockDecoder decodes bodies against a BlockSchema, strictly: a value of
// the wrong primitive type is an error, never converted silently.
type blockDecoder struct {
	l   *loader
	ctx *hcl.EvalContext
	// ranges records where each set attribute's value was written, keyed by
	// its path ("fix.grub", "disk[1].size"), for diagnostics raised after
	// decoding (an out-of-range number, an unknown enum value).
	ranges map[string]hcl.Range
}

func (l *loader) newDecoder(ctx *hcl.EvalContext) *blockDecoder {
	return &blockDecoder{l: l, ctx: ctx, ranges: map[string]hcl.Range{}}
}

// invalid is a diagnostic about the value written for the attribute at
// path, raised after decoding.
func (d *blockDecoder) invalid(path, summary, detail string) *hcl.Diagnostic {
	diag := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
	if r, ok := d.ranges[path]; ok {
		diag.Subject = r.Ptr()
	}
	return diag
}

// hclSchema turns a BlockSchema into what hcl.Body.Content checks: it
// reports unknown arguments, unknown block types and missing required
// arguments with ranges and suggestions.
func hclSchema(bs BlockSchema) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, a := range bs.Attributes {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a.Name, Required: a.Required})
	}
	for _, b := range bs.Blocks {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: b.Name})
	}
	return s
}

// impliedType is the object type a BlockSchema decodes to.
func impliedType(bs BlockSchema) cty.Type {
	atys := map[string]cty.Type{}
	for _, a := range bs.Attributes {
		atys[a.Name] = a.Type
	}
	for _, b := range bs.Blocks {
		ety := impliedType(b.Block)
		if b.Nesting == NestingList {
			atys[b.Name] = cty.List(ety)
		} else {
			atys[b.Name] = ety
		}
	}
	return cty.Object(atys)
}

// decode evaluates body against bs and returns an object of
// impliedType(bs). The object may carry sensitive marks. On errors the
// affected attributes are unknown, which later steps treat as "already
// reported" so that one mistake yields one diagnostic.
func (d *blockDecoder) decode(body hcl.Body, bs BlockSchema, prefix string) (cty.Value, hcl.Diagnostics) {
	content, diags := body.Content(hclSchema(bs))
	vals := map[string]cty.Value{}
	for _, as := range bs.Attributes {
		v, ds := d.attribute(content.Attributes[as.Name], as, prefix)
		diags = append(diags, ds...)
		vals[as.Name] = v
	}
	for _, ns := range bs.Blocks {
		v, ds := d.nested(content.Blocks.OfType(ns.Name), ns, prefix)
		diags = append(diags, ds...)
		vals[ns.Name] = v
	}
	return cty.ObjectVal(vals), diags
}

func (d *blockDecoder) attribute(attr *hcl.Attribute, as AttributeSchema, prefix string) (cty.Value, hcl.Diagnostics) {
	if attr == nil {
		if !isNil(as.Default) {
			return markIf(as.Default, as.Sensitive), nil
		}
		return markIf(cty.NullVal(as.Type), as.Sensitive), nil
	}
	d.ranges[prefix+as.Name] = attr.Expr.Range()
	raw, diags := d.l.eval(attr.Expr, d.ctx)
	if diags.HasErrors() {
		return cty.UnknownVal(as.Type), diags
	}
	v, err := convertStrict(raw, as.Type)
	if err != nil {
		expr, vctx := valueContext(attr.Expr, d.ctx)
		return cty.UnknownVal(as.Type), append(diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     "Incorrect attribute value type",
			Detail:      fmt.Sprintf("Inappropriate value for attribute %q: %s.", as.Name, err),
			Subject:     attr.Expr.Range().Ptr(),
			Expression:  expr,
			EvalContext: vctx,
		})
	}
	if v.IsNull() && as.Required {
		return cty.UnknownVal(as.Type), append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Required attribute is null",
			Detail:   fmt.Sprintf("The argument %q is required and must not be null.", as.Name),
			Subject:  attr.Expr.Range().Ptr(),
		})
	}
	if v.IsNull() && !isNil(as.Default) {
		v = as.Default
	}
	return markIf(v, as.Sensitive), diags
}

func (d *blockDecoder) nested(blocks hcl.Blocks, ns NestedBlockSchema, prefix string) (cty.Value, hcl.Diagnostics) {
	ety := impliedType(ns.Block)
	var diags hcl.Diagnostics
	if ns.Nesting == NestingSingle {
		if len(blocks) == 0 {
			return cty.NullVal(ety), nil
		}
		for _, dup := range blocks[1:] {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate %s block", ns.Name),
				Detail:   fmt.Sprintf("Only one %s block is allowed here; the first is at %s.", ns.Name, blocks[0].DefRange),
				Subject:  dup.DefRange.Ptr(),
			})
		}
		d.ranges[prefix+ns.Name] = blocks[0].DefRange
		v, ds := d.decode(blocks[0].Body, ns.Block, prefix+ns.Name+".")
		return v, append(diags, ds...)
	}
	if len(blocks) == 0 {
		return cty.ListValEmpty(ety), nil
	}
	elems := make([]cty.Value, 0, len(blocks))
	for i, b := range blocks {
		p := fmt.Sprintf("%s%s[%d]", prefix, ns.Name, i)
		d.ranges[p] = b.DefRange
		v, ds := d.decode(b.Body, ns.Block, p+".")
		diags = append(diags, ds...)
		elems = append(elems, v)
	}
	return cty.ListVal(elems), diags
}

// plain returns v without marks, refusing sensitive values: the settings
// of migrations and of the agent end up in plans, state and status output,
// which have no way to redact them. (Plugin blocks may hold secrets: their
// SensitivePaths say where.)
func (d *blockDecoder) plain(v cty.Value, what string) (cty.Value, hcl.Diagnostics) {
	unmarked, paths := sensitivePaths(v)
	var diags hcl.Diagnostics
	for _, p := range sortPaths(paths) {
		diags = append(diags, d.invalid(pathString(p), "Sensitive value not allowed here",
			fmt.Sprintf("%s is set from a sensitive value, but %s settings are shown in plans, state and output. Use a non-sensitive value here; secrets belong in source, converter or target blocks. %s", pathString(p), what, sensitiveSources)))
	}
	return unmarked, diags
}

func markIf(v cty.Value, sensitive bool) cty.Value {
	if sensitive {
		return v.Mark(sensitiveMark)
	}
	return v
}

// convertStrict converts v to want like cty's convert, except that it
// refuses to turn one primitive type into another (a number literal given
// for a string argument is a mistake, not a string).
func convertStrict(v cty.Value, want cty.Type) (cty.Value, error) {
	unmarked, _ := v.UnmarkDeep()
	if err := checkPrimitives(unmarked, want); err != nil {
		return cty.NilVal, err
	}
	out, err := convert.Convert(v, want)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s", convertMessage(err))
	}
	return out, nil
}

func convertMessage(err error) string {
	if pe, ok := err.(cty.PathError); ok && len(pe.Path) > 0 {
		return fmt.Sprintf("%s: %s", pathString(pe.Path), pe.Error())
	}
	return err.Error()
}

// checkPrimitives walks v against want and reports the first primitive
// value whose type differs from the one wanted.
func checkPrimitives(v cty.Value, want cty.Type) error {
	if v.IsNull() || !v.IsKnown() || want == cty.DynamicPseudoType {
		return nil
	}
	got := v.Type()
	switch {
	case want.IsPrimitiveType():
		if got.IsPrimitiveType() && !got.Equals(want) {
			return fmt.Errorf("%s required, but got %s", want.FriendlyName(), got.FriendlyName())
		}
	case want.IsListType() || want.IsSetType():
		if got.IsListType() || got.IsSetType() || got.IsTupleType() {
			return checkElements(v, func(cty.Value) cty.Type { return want.ElementType() })
		}
	case want.IsMapType():
		if got.IsMapType() || got.IsObjectType() {
			return checkElements(v, func(cty.Value) cty.Type { return want.ElementType() })
		}
	case want.IsObjectType():
		if got.IsObjectType() || got.IsMapType() {
			return checkElements(v, func(k cty.Value) cty.Type {
				if k.Type() == cty.String && want.HasAttribute(k.AsString()) {
					return want.AttributeType(k.AsString())
				}
				return cty.DynamicPseudoType
			})
		}
	}
	return nil
}

func checkElements(v cty.Value, elemType func(key cty.Value) cty.Type) error {
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if err := checkPrimitives(e, elemType(k)); err != nil {
			if v.Type().IsSetType() {
				return fmt.Errorf("element: %w", err)
			}
			return fmt.Errorf("element [%s]: %w", keyString(k), err)
		}
	}
	return nil
}

// sensitivePaths lists the paths of v that carry the sensitive mark, and
// returns v without any marks.
func sensitivePaths(v cty.Value) (cty.Value, []cty.Path) {
	unmarked, pvms := v.UnmarkDeepWithPaths()
	var paths []cty.Path
	for _, pvm := range pvms {
		if _, ok := pvm.Marks[sensitiveMark]; ok {
			paths = append(paths, pvm.Path.Copy())
		}
	}
	return unmarked, paths
}
