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
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Unknown %s type", kind),
			Detail:   fmt.Sprintf("There is no %s type %q. Known %s types: %s.", kind, typ, kind, strings.Join(known, ", ")),
			Subject:  b.LabelRanges[0].Ptr(),
		}}
	}
	v, ds := l.newDecoder(ctx).decode(b.Body, bs, "")
	if ds.HasErrors() || !v.IsWhollyKnown() {
		set(cty.DynamicVal)
		return ds
	}
	v = resolvePaths(l.dir, v, bs)
	set(v)
	unmarked, paths := sensitivePaths(v)
	pb := &PluginBlock{Addr: addr, Config: unmarked, SensitivePaths: sortPaths(paths), DeclRange: b.DefRange}
	key := typ + "." + name
	switch kind {
	case addrs.KindSource:
		l.cfg.Sources[key] = pb
	case addrs.KindConverter:
		l.cfg.Converters[key] = pb
	case addrs.KindTarget:
		l.cfg.Targets[key] = pb
	}
	return ds
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
