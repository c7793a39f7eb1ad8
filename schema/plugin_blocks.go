package schema

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

var pluginKinds = []addrs.Kind{addrs.KindSource, addrs.KindConverter, addrs.KindTarget}

// loadPlugins declares every source, converter and target block, then
// decodes each against the schema its plugin declared. Plugin blocks may
// refer to variables and locals, not to each other.
func (l *loader) loadPlugins(blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	l.plugins = map[addrs.Kind]map[string]map[string]cty.Value{}
	l.declared = map[addrs.Plugin]hcl.Range{}
	ctx := l.evalContext()
	for _, kind := range pluginKinds {
		for _, b := range blocks.OfType(string(kind)) {
			diags = append(diags, l.loadPlugin(ctx, kind, b)...)
		}
	}
	return append(diags, l.resolveFallbacks()...)
}

// converterMetaSchema holds the meta-arguments of a converter block: the
// schema layer handles them and never passes them to the plugin, so a
// plugin cannot declare an attribute of the same name.
var converterMetaSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "fallback"}},
}

// fallbackRef is a converter's fallback argument, before it is resolved.
type fallbackRef struct {
	from addrs.Plugin
	attr *hcl.Attribute
}

// resolveFallbacks checks each fallback argument once every block is
// declared: it names another declared converter, which has no fallback of
// its own (one level: a chain would hide which converter did the work).
func (l *loader) resolveFallbacks() hcl.Diagnostics {
	var diags hcl.Diagnostics
	byFrom := map[addrs.Plugin]fallbackRef{}
	for _, f := range l.fallbacks {
		byFrom[f.from] = f
	}
	for _, f := range l.fallbacks {
		to, ds := l.pluginRef(f.attr, addrs.KindConverter)
		if ds.HasErrors() {
			diags = append(diags, ds...)
			continue
		}
		rng := f.attr.Expr.Range()
		if to == f.from {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid fallback",
				Detail:   fmt.Sprintf("%s names itself as its fallback; a fallback must be another converter.", f.from),
				Subject:  rng.Ptr(),
			})
			continue
		}
		if next, chained := byFrom[to]; chained {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid fallback",
				Detail: fmt.Sprintf("%s, the fallback of %s, has a fallback of its own (at %s). A fallback is one level deep: it must be a converter without a fallback.",
					to, f.from, next.attr.Expr.Range()),
				Subject: rng.Ptr(),
			})
			continue
		}
		if pb := l.cfg.Converters[f.from.Type+"."+f.from.Name]; pb != nil {
			pb.Fallback = &to
		}
	}
	return diags
}

func (l *loader) loadPlugin(ctx *hcl.EvalContext, kind addrs.Kind, b *hcl.Block) hcl.Diagnostics {
	typ, name := b.Labels[0], b.Labels[1]
	diags := checkName(string(kind)+" type", typ, b.LabelRanges[0])
	diags = append(diags, checkName(string(kind), name, b.LabelRanges[1])...)
	if diags.HasErrors() {
		return diags
	}
	addr := addrs.Plugin{Kind: kind, Type: typ, Name: name}
	if prev, dup := l.declared[addr]; dup {
		return hcl.Diagnostics{duplicate(string(kind), typ+"."+name, b.DefRange, prev)}
	}
	l.declared[addr] = b.DefRange
	body := b.Body
	var fallback *hcl.Attribute
	if kind == addrs.KindConverter {
		meta, rest, ds := body.PartialContent(converterMetaSchema)
		diags = append(diags, ds...)
		body = rest
		if fallback = meta.Attributes["fallback"]; fallback != nil {
			l.fallbacks = append(l.fallbacks, fallbackRef{from: addr, attr: fallback})
		}
	}
	set := func(v cty.Value) {
		if l.plugins[kind] == nil {
			l.plugins[kind] = map[string]map[string]cty.Value{}
		}
		if l.plugins[kind][typ] == nil {
			l.plugins[kind][typ] = map[string]cty.Value{}
		}
		l.plugins[kind][typ][name] = v
	}

	bs, ok := l.opts.Plugins[kind][typ]
	if !ok {
		set(cty.DynamicVal)
		known := make([]string, 0, len(l.opts.Plugins[kind]))
		for t := range l.opts.Plugins[kind] {
			known = append(known, t)
		}
		sort.Strings(known)
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Unknown %s type", kind),
			Detail:   fmt.Sprintf("There is no %s type %q. Known %s types: %s.", kind, typ, kind, strings.Join(known, ", ")),
			Subject:  b.LabelRanges[0].Ptr(),
		})
	}
	dec := l.newDecoder(ctx)
	v, ds := dec.decode(body, bs, "")
	diags = append(diags, ds...)
	if ds.HasErrors() || !v.IsWhollyKnown() {
		set(cty.DynamicVal)
		return diags
	}
	v = resolvePaths(l.dir, v, bs)
	set(v)
	unmarked, paths := sensitivePaths(v)
	l.noteSecretVars(body, paths)
	pb := &PluginBlock{
		Addr:           addr,
		Config:         unmarked,
		SensitivePaths: sortPaths(paths),
		AttrRanges:     map[string]hcl.Range{},
		DeclRange:      b.DefRange,
	}
	for _, a := range bs.Attributes {
		if r, ok := dec.ranges[a.Name]; ok {
			pb.AttrRanges[a.Name] = r
		}
	}
	if fallback != nil {
		pb.AttrRanges["fallback"] = fallback.Expr.Range()
	}
	key := typ + "." + name
	switch kind {
	case addrs.KindSource:
		l.cfg.Sources[key] = pb
	case addrs.KindConverter:
		l.cfg.Converters[key] = pb
	case addrs.KindTarget:
		l.cfg.Targets[key] = pb
	}
	return diags
}

// sortPaths orders paths by their rendering, so SensitivePaths is
// deterministic.
func sortPaths(paths []cty.Path) []cty.Path {
	sort.Slice(paths, func(i, j int) bool { return pathString(paths[i]) < pathString(paths[j]) })
	return paths
}

// resolvePaths makes the block's relative Path attributes absolute against
// dir, keeping their marks (a sensitive path stays sensitive).
func resolvePaths(dir string, v cty.Value, bs BlockSchema) cty.Value {
	if v.IsNull() || !v.Type().IsObjectType() {
		return v
	}
	attrs := v.AsValueMap()
	changed := false
	for _, a := range bs.Attributes {
		av, ok := attrs[a.Name]
		if !a.Path || !ok {
			continue
		}
		raw, marks := av.Unmark()
		if raw.IsNull() || !raw.IsKnown() || raw.Type() != cty.String || raw.AsString() == "" {
			continue
		}
		attrs[a.Name] = cty.StringVal(resolve(dir, raw.AsString())).WithMarks(marks)
		changed = true
	}
	if !changed {
		return v
	}
	return cty.ObjectVal(attrs)
}
