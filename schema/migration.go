package schema

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// metaSchema is the part of a migration block that is not evaluated per
// instance: for_each itself, and the static references.
var metaSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "for_each"},
		{Name: "source", Required: true},
		{Name: "converter", Required: true},
		{Name: "target", Required: true},
		{Name: "depends_on"},
	},
}

// migrationBlock is one `migration` block while its instances are built.
type migrationBlock struct {
	name       string
	block      *hcl.Block
	hasForEach bool
	// keysKnown is false when for_each failed; references to its instances
	// are then not checked, since the error was already reported.
	keysKnown bool
	keys      map[string]bool
	deps      []depRef
}

// depRef is one entry of depends_on and where it was written.
type depRef struct {
	addr addrs.Migration
	rng  hcl.Range
}

// instance is one for_each element: its key and each.value.
type instance struct {
	key   string
	value cty.Value
}

func (l *loader) loadMigrations(blocks hcl.Blocks, hadErrors bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	byName := map[string]*migrationBlock{}
	var order []*migrationBlock
	for _, b := range blocks {
		name := b.Labels[0]
		if ds := checkName("migration", name, b.LabelRanges[0]); ds != nil {
			diags = append(diags, ds...)
			continue
		}
		if prev, dup := byName[name]; dup {
			diags = append(diags, duplicate("migration", name, b.DefRange, prev.block.DefRange))
			continue
		}
		mb := &migrationBlock{name: name, block: b, keys: map[string]bool{}}
		byName[name] = mb
		order = append(order, mb)
		diags = append(diags, l.loadMigration(mb, hadErrors || diags.HasErrors())...)
	}
	diags = append(diags, checkDependsOn(order, byName)...)
	sort.Slice(l.cfg.Migrations, func(i, j int) bool {
		return l.cfg.Migrations[i].Addr.Less(l.cfg.Migrations[j].Addr)
	})
	return diags
}

func (l *loader) loadMigration(mb *migrationBlock, hadErrors bool) hcl.Diagnostics {
	b := mb.block
	meta, rest, diags := b.Body.PartialContent(metaSchema)
	ctx := l.evalContext()

	var refs [3]addrs.Plugin
	refsOK := true
	for i, kind := range pluginKinds {
		a := meta.Attributes[string(kind)]
		if a == nil {
			refsOK = false
			continue
		}
		p, ds := l.pluginRef(a, kind)
		diags = append(diags, ds...)
		refsOK = refsOK && !ds.HasErrors()
		refs[i] = p
	}
	if a := meta.Attributes["depends_on"]; a != nil {
		deps, ds := parseDependsOn(a)
		diags = append(diags, ds...)
		mb.deps = deps
	}

	insts := []instance{{}}
	if a := meta.Attributes["for_each"]; a != nil {
		mb.hasForEach = true
		var ds hcl.Diagnostics
		insts, ds = l.forEach(a, ctx, hadErrors || diags.HasErrors())
		diags = append(diags, ds...)
		if insts == nil {
			return diags
		}
	}
	mb.keysKnown = true
	for _, inst := range insts {
		addr := addrs.Migration{Name: mb.name}
		ictx := ctx
		if mb.hasForEach {
			addr.Key, addr.HasKey = inst.key, true
			mb.keys[inst.key] = true
			ictx = withEach(ctx, inst)
		}
		m, ranges, ds := l.decodeSettings(rest, ictx)
		diags = append(diags, ds...)
		if m == nil || !refsOK {
			continue
		}
		m.Addr, m.DeclRange = addr, b.DefRange
		m.Source, m.Converter, m.Target = refs[0], refs[1], refs[2]
		if m.Domain.Name != "" {
			diags = append(diags, l.claimDomainName(m, ranges["domain.name"])...)
		}
		for _, d := range mb.deps {
			m.DependsOn = append(m.DependsOn, d.addr)
		}
		l.cfg.Migrations = append(l.cfg.Migrations, m)
	}
	return diags
}

func withEach(ctx *hcl.EvalContext, inst instance) *hcl.EvalContext {
	vars := make(map[string]cty.Value, len(ctx.Variables)+1)
	for k, v := range ctx.Variables {
		vars[k] = v
	}
	vars["each"] = cty.ObjectVal(map[string]cty.Value{
		"key":   cty.StringVal(inst.key),
		"value": inst.value,
	})
	return &hcl.EvalContext{Variables: vars, Functions: ctx.Functions}
}

// forEach evaluates for_each into instances, sorted by key. It returns nil
// when the value is unusable; the reason is a diagnostic unless it follows
// from an error already reported.
func (l *loader) forEach(a *hcl.Attribute, ctx *hcl.EvalContext, hadErrors bool) ([]instance, hcl.Diagnostics) {
	v, diags := l.eval(a.Expr, ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	bad := func(detail string) ([]instance, hcl.Diagnostics) {
		expr, vctx := valueContext(a.Expr, ctx)
		return nil, append(diags, &hcl.Diagnostic{
			Severity:    hcl.DiagError,
			Summary:     "Invalid for_each argument",
			Detail:      detail,
			Subject:     a.Expr.Range().Ptr(),
			Expression:  expr,
			EvalContext: vctx,
		})
	}
	switch {
	case !v.IsWhollyKnown():
		// validate without variable values: its instances are unknown,
		// and their settings are not checked.
		if hadErrors || l.opts.UnsetUnknown {
			return nil, diags
		}
		return bad("The for_each value is not known. It must be known when the configuration is loaded.")
	case v.ContainsMarked():
		return bad("Sensitive values, or values derived from sensitive values, cannot be used as for_each arguments: the keys would appear in addresses and output. " + sensitiveSources)
	case v.IsNull():
		return bad("The for_each value is null. A map, or set of strings, is allowed.")
	}
	ty := v.Type()
	var insts []instance
	switch {
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			insts = append(insts, instance{key: k.AsString(), value: e})
		}
	case ty.IsSetType() && v.LengthInt() == 0:
		// toset([]) is a set of no known element type: zero instances.
	case ty.IsSetType():
		if !ty.ElementType().Equals(cty.String) {
			return bad(fmt.Sprintf("The for_each set must be a set of strings, and you have provided a set of %s.", ty.ElementType().FriendlyName()))
		}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsNull() {
				return bad("The for_each set must not contain null.")
			}
			insts = append(insts, instance{key: e.AsString(), value: e})
		}
	default:
		return bad(fmt.Sprintf("The for_each argument must be a map, or set of strings, and you have provided a value of type %s. Use toset() to turn a list of strings into a set.", ty.FriendlyName()))
	}
	sort.Slice(insts, func(i, j int) bool { return insts[i].key < insts[j].key })
	return insts, diags
}

// pluginRef resolves a static reference such as source.vsphere.dc1 to the
// declared block it names.
func (l *loader) pluginRef(a *hcl.Attribute, want addrs.Kind) (addrs.Plugin, hcl.Diagnostics) {
	invalid := func(detail string) (addrs.Plugin, hcl.Diagnostics) {
		return addrs.Plugin{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid %s reference", want),
			Detail:   detail,
			Subject:  a.Expr.Range().Ptr(),
		}}
	}
	example := fmt.Sprintf("%s must be a reference to a %s block, like %s.TYPE.NAME", a.Name, want, want)
	tr, ds := hcl.AbsTraversalForExpr(a.Expr)
	if ds.HasErrors() {
		return invalid(example + ".")
	}
	typ, ok1 := attrStep(tr, 1)
	name, ok2 := attrStep(tr, 2)
	if len(tr) != 3 || !ok1 || !ok2 {
		return invalid(example + ".")
	}
	if root := tr.RootName(); root != string(want) {
		return invalid(fmt.Sprintf("%s; %s.%s.%s is not a %s.", example, root, typ, name, want))
	}
	p := addrs.Plugin{Kind: want, Type: typ, Name: name}
	if _, ok := l.declared[p]; !ok {
		return p, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Reference to undeclared %s", want),
			Detail:   fmt.Sprintf("No %s %q %q block is declared.%s", want, typ, name, l.declaredList(want)),
			Subject:  a.Expr.Range().Ptr(),
		}}
	}
	return p, nil
}

// declaredList names the declared blocks of a kind, as a hint.
func (l *loader) declaredList(kind addrs.Kind) string {
	var names []string
	for p := range l.declared {
		if p.Kind == kind {
			names = append(names, p.String())
		}
	}
	if len(names) == 0 {
		return fmt.Sprintf(" No %s block is declared at all.", kind)
	}
	sort.Strings(names)
	s := " Declared: "
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s + "."
}

// domainKey is a domain name on one target.
type domainKey struct {
	target addrs.Plugin
	name   string
}

// domainClaim is the instance that set a domain name first, and where.
type domainClaim struct {
	addr addrs.Migration
	rng  hcl.Range
}

// claimDomainName records that m sets its domain's name, and reports it at
// rng when an instance loaded before it sets the same name on the same
// target: both would define, and then overwrite, one domain and its disks.
// Names taken from the VMs are known only at plan time, which checks them.
func (l *loader) claimDomainName(m *Migration, rng hcl.Range) hcl.Diagnostics {
	k := domainKey{target: m.Target, name: m.Domain.Name}
	prev, taken := l.domainNames[k]
	if !taken {
		l.domainNames[k] = domainClaim{addr: m.Addr, rng: rng}
		return nil
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Duplicate domain name",
		Detail: fmt.Sprintf("%s sets the domain name %q on %s, as %s does at %s. Each migration defines its own domain, and the name also names its disk files: give each a different name.",
			m.Addr, m.Domain.Name, m.Target, prev.addr, prev.rng),
		Subject: rng.Ptr(),
	}}
}
