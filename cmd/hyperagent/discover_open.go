package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// discovery is one discover run: the repo, the blocks the new migrations
// use, and the plugin instances it asks.
type discovery struct {
	cfg *schema.Config
	// blocks are the migration block names the files declare.
	blocks                    map[string]bool
	source, converter, target addrs.Plugin
	src                       plugins.Discoverer
	// tgt checks the new domains (existing, networks); nil when it cannot
	// be asked, with tgtNote saying why.
	tgt     plugins.Target
	tgtNote string
	// exportDir is written in the blocks; exportAbs is it resolved
	// against the repo, for findings.
	exportDir, exportAbs string
	folder               string
	match                []string
	powerOff             bool
}

// openDiscovery loads the repo, picks the blocks and builds the source
// (and, when its settings are known, the target). It prints what is
// wrong and returns false on failure.
func openDiscovery(ctx context.Context, e *env, dir string, df discoverFlags) (*discovery, bool) {
	cfg, files, ok := loadForDiscovery(e, dir, df.cf)
	if !ok {
		return nil, false
	}
	e.redact.SetSecrets(cfg.Secrets())
	declared, blocks := declaredBlocks(files)
	d := &discovery{cfg: cfg, blocks: blocks, folder: df.folder, match: df.match, powerOff: df.powerOff}
	var err error
	for _, p := range []struct {
		kind addrs.Kind
		flag string
		to   *addrs.Plugin
	}{{addrs.KindSource, df.source, &d.source}, {addrs.KindConverter, df.converter, &d.converter}, {addrs.KindTarget, df.target, &d.target}} {
		if *p.to, err = pickPlugin(declared[p.kind], p.kind, p.flag); err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return nil, false
		}
	}
	if d.exportDir, err = discoverExportDir(cfg, df.exportDir); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return nil, false
	}
	d.exportAbs = d.exportDir
	if !filepath.IsAbs(d.exportAbs) {
		d.exportAbs = filepath.Join(cfg.Dir, d.exportAbs)
	}
	block := cfg.Sources[d.source.Type+"."+d.source.Name]
	if block == nil {
		// Its settings use variables with no value: the full load names them.
		_, files, diags := loadConfig(e, dir, df.cf)
		writeDiagnostics(e, files, diags)
		fmt.Fprintf(e.stderr, "Error: discover connects to %s, whose settings depend on variables that have no value; give them with -var, -var-file or HYPERAGENT_VAR_<name>\n", d.source)
		return nil, false
	}
	inst, err := newPlugin(ctx, e, block)
	if err != nil {
		writeDiagnostics(e, files, pluginDiagnostics(cfg, err))
		return nil, false
	}
	src, ok := inst.(plugins.Discoverer)
	if !ok {
		closeQuietly(e, d.source.String(), inst)
		fmt.Fprintf(e.stderr, "Error: %s: a source of type %q cannot list its VMs\n", d.source, d.source.Type)
		return nil, false
	}
	d.src = src
	d.openTarget(ctx, e, files)
	return d, true
}

// openTarget builds the target, or says why the new domains are not
// checked.
func (d *discovery) openTarget(ctx context.Context, e *env, files schema.Files) {
	block := d.cfg.Targets[d.target.Type+"."+d.target.Name]
	if block == nil {
		d.tgtNote = fmt.Sprintf("%s is not asked (its settings depend on variables that have no value)", d.target)
		return
	}
	inst, err := newPlugin(ctx, e, block)
	if err != nil {
		writeDiagnostics(e, files, pluginDiagnostics(d.cfg, err))
		d.tgtNote = fmt.Sprintf("%s is not asked (it cannot start)", d.target)
		return
	}
	tgt, ok := inst.(plugins.Target)
	if !ok {
		closeQuietly(e, d.target.String(), inst)
		d.tgtNote = fmt.Sprintf("%s is not asked (its plugin is not a target)", d.target)
		return
	}
	d.tgt = tgt
}

// close releases the plugin instances.
func (d *discovery) close(e *env) {
	closeQuietly(e, d.source.String(), d.src)
	if d.tgt != nil {
		closeQuietly(e, d.target.String(), d.tgt)
	}
}

// newPlugin builds one plugin instance from its block, as
// plugins.Instantiate does for a whole configuration.
func newPlugin(ctx context.Context, e *env, b *schema.PluginBlock) (any, error) {
	f, ok := e.registry.Lookup(b.Addr.Kind, b.Addr.Type)
	if !ok {
		return nil, fmt.Errorf("%s: no %s plugin of type %q in this build", b.Addr, b.Addr.Kind, b.Addr.Type)
	}
	inst, err := f.New(ctx, plugins.NewRequest{Addr: b.Addr, Config: b.Config, Logger: e.log.Named(b.Addr.String())})
	if err != nil {
		return nil, &plugins.PluginError{Addr: b.Addr, Err: err, Starting: true}
	}
	return inst, nil
}

// declaredBlocks lists the plugin blocks and the names of the migration
// blocks the files declare, whether or not their settings could be
// evaluated.
func declaredBlocks(files schema.Files) (map[addrs.Kind][]addrs.Plugin, map[string]bool) {
	sch := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "migration", LabelNames: []string{"name"}}}}
	for _, k := range []addrs.Kind{addrs.KindSource, addrs.KindConverter, addrs.KindTarget} {
		sch.Blocks = append(sch.Blocks, hcl.BlockHeaderSchema{Type: string(k), LabelNames: []string{"type", "name"}})
	}
	plugs, migrations := map[addrs.Kind][]addrs.Plugin{}, map[string]bool{}
	for _, f := range files {
		content, _, _ := f.Body.PartialContent(sch)
		if content == nil {
			continue
		}
		for _, b := range content.Blocks {
			if b.Type == "migration" {
				migrations[b.Labels[0]] = true
				continue
			}
			k := addrs.Kind(b.Type)
			plugs[k] = append(plugs[k], addrs.Plugin{Kind: k, Type: b.Labels[0], Name: b.Labels[1]})
		}
	}
	for _, l := range plugs {
		sort.Slice(l, func(i, j int) bool { return l[i].String() < l[j].String() })
	}
	return plugs, migrations
}

// pickPlugin is the block a flag names (KIND.TYPE.NAME, or TYPE.NAME),
// else the only one declared.
func pickPlugin(declared []addrs.Plugin, kind addrs.Kind, flagVal string) (addrs.Plugin, error) {
	names := make([]string, len(declared))
	for i, p := range declared {
		names[i] = p.String()
	}
	list := strings.Join(names, ", ")
	if flagVal != "" {
		s := flagVal
		if !strings.HasPrefix(s, string(kind)+".") {
			s = string(kind) + "." + s
		}
		want, err := addrs.ParsePlugin(s)
		if err != nil || want.Kind != kind {
			return addrs.Plugin{}, fmt.Errorf("-%s=%s: want %s.TYPE.NAME", kind, flagVal, kind)
		}
		for _, p := range declared {
			if p == want {
				return p, nil
			}
		}
		if len(declared) == 0 {
			return addrs.Plugin{}, fmt.Errorf("-%s=%s: the repo declares no %s block", kind, flagVal, kind)
		}
		return addrs.Plugin{}, fmt.Errorf("-%s=%s: the repo declares no such block; it declares %s", kind, flagVal, list)
	}
	switch len(declared) {
	case 0:
		return addrs.Plugin{}, fmt.Errorf("the repo declares no %s block; declare one first (hyperagent init writes an example)", kind)
	case 1:
		return declared[0], nil
	}
	return addrs.Plugin{}, fmt.Errorf("the repo declares %d %s blocks (%s): name one with -%s=", len(declared), kind, list, kind)
}

// discoverExportDir is the export dir the new blocks use: the flag, else
// the one dir the repo's migrations export to.
func discoverExportDir(cfg *schema.Config, flagVal string) (string, error) {
	if flagVal != "" {
		return flagVal, nil
	}
	dirs := map[string]bool{}
	for _, m := range cfg.Migrations {
		dirs[m.Export.Dir] = true
	}
	if len(dirs) == 1 {
		for d := range dirs {
			return d, nil
		}
	}
	if len(dirs) == 0 {
		return "", fmt.Errorf("no migration of the repo says where exports go: name the export dir with -export-dir=DIR")
	}
	return "", fmt.Errorf("the repo's migrations export to %d dirs: name the new blocks' with -export-dir=DIR", len(dirs))
}
