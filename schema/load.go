package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// LoadOptions says where the config is and how variables are set.
type LoadOptions struct {
	Dir      string
	Vars     []string // raw -var arguments, "name=value", in order given
	VarFiles []string // -var-file paths, in order given
	Env      []string // the environment, for HYPERAGENT_VAR_name; nil means none
	Plugins  PluginSchemas
	// UnsetUnknown makes a required variable that is not set an unknown
	// value of its type instead of an error: validate checks a repo
	// without its secrets (as terraform validate does), and what cannot be
	// checked without the value is left unchecked.
	UnsetUnknown bool
	// Saved holds the variable values of the saved plan being applied:
	// they are the values, and the secret ones it withheld must be given.
	Saved *SavedVariables
}

// Files is the parsed source, kept so diagnostics can be printed with
// snippets (hcl.NewDiagnosticTextWriter takes it).
type Files map[string]*hcl.File

// rootSchema is the top level of a config file.
var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "agent"},
		{Type: "state"},
		{Type: string(addrs.KindSource), LabelNames: []string{"type", "name"}},
		{Type: string(addrs.KindConverter), LabelNames: []string{"type", "name"}},
		{Type: string(addrs.KindTarget), LabelNames: []string{"type", "name"}},
		{Type: "migration", LabelNames: []string{"name"}},
		{Type: "notify", LabelNames: []string{"type", "name"}},
	},
}

// loader carries the state of one Load: what has been evaluated so far and
// every diagnostic raised.
type loader struct {
	opts   LoadOptions
	dir    string // absolute
	parser *hclparse.Parser
	funcs  map[string]function.Function

	varDecls map[string]*varDecl
	vars     map[string]cty.Value // possibly marked sensitive
	locals   map[string]cty.Value
	// localDecls are the locals' attributes, to follow what a value
	// refers to through them (unsetVars).
	localDecls map[string]*hcl.Attribute
	// plugins holds each declared plugin block's value for expressions:
	// kind → type → name. A block that failed to decode is unknown, so
	// references to it do not report a second error.
	plugins  map[addrs.Kind]map[string]map[string]cty.Value
	declared map[addrs.Plugin]hcl.Range
	// fallbacks are the converter blocks' fallback arguments, in the
	// order declared, resolved once every block is declared.
	fallbacks []fallbackRef
	// domainNames holds the domain names migrations set, per target.
	domainNames map[domainKey]domainClaim

	cfg *Config
}

// Load reads every *.hcl and *.hcl.json file of opts.Dir (sorted), evaluates
// it and returns the Config. The Files are returned even when there are
// errors, so the diagnostics can be printed with source snippets. Config is
// nil when diags has errors.
func Load(opts LoadOptions) (*Config, Files, hcl.Diagnostics) {
	l := &loader{opts: opts, parser: hclparse.NewParser(), domainNames: map[domainKey]domainClaim{}}
	cfg, diags := l.load()
	diags = dedupe(diags)
	clipDetails(diags)
	files := Files(l.parser.Files())
	if diags.HasErrors() {
		return nil, files, diags
	}
	return cfg, files, diags
}

func (l *loader) load() (*Config, hcl.Diagnostics) {
	abs, err := filepath.Abs(l.opts.Dir)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid configuration directory", Detail: err.Error()}}
	}
	l.dir = abs
	l.funcs = functions(abs)
	files, diags := l.parseDir()
	if diags.HasErrors() {
		// A file that does not parse may declare what the others use:
		// evaluating without it would bury the syntax error in follow-ups.
		return nil, diags
	}
	content, ds := hcl.MergeFiles(files).Content(rootSchema)
	diags = append(diags, ds...)

	l.cfg = &Config{
		Dir:        abs,
		Variables:  map[string]*Variable{},
		Sources:    map[string]*PluginBlock{},
		Converters: map[string]*PluginBlock{},
		Targets:    map[string]*PluginBlock{},
	}
	blocks := content.Blocks
	diags = append(diags, l.loadVariables(blocks.OfType("variable"))...)
	diags = append(diags, l.loadLocals(blocks.OfType("locals"))...)
	diags = append(diags, l.loadAgent(blocks.OfType("agent"))...)
	diags = append(diags, l.loadState(blocks.OfType("state"))...)
	diags = append(diags, l.loadPlugins(blocks)...)
	diags = append(diags, l.loadMigrations(blocks.OfType("migration"), diags.HasErrors())...)
	diags = append(diags, l.loadNotify(blocks.OfType("notify"))...)
	if diags.HasErrors() {
		return nil, diags
	}
	if l.opts.UnsetUnknown {
		// Values are missing on purpose: the config is for checking only,
		// and has no digest to bind a plan to.
		return l.cfg, diags
	}
	digest, err := configDigest(l.cfg)
	if err != nil {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot compute the configuration digest", Detail: err.Error()})
	}
	l.cfg.Digest = digest
	return l.cfg, diags
}

// parseDir parses the config files of the directory in name order. A
// syntax error in one file does not stop the others from being read.
func (l *loader) parseDir() ([]*hcl.File, hcl.Diagnostics) {
	entries, err := os.ReadDir(l.opts.Dir)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read the configuration directory",
			Detail:   err.Error(),
		}}
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if strings.HasSuffix(n, ".hcl") || strings.HasSuffix(n, ".hcl.json") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "No configuration files",
			Detail:   fmt.Sprintf("The directory %s contains no *.hcl or *.hcl.json files.", l.opts.Dir),
		}}
	}
	var files []*hcl.File
	var diags hcl.Diagnostics
	for _, n := range names {
		f, ds := l.parseFile(filepath.Join(l.opts.Dir, n), "configuration file")
		diags = append(diags, ds...)
		if f != nil && !ds.HasErrors() {
			files = append(files, f)
		}
	}
	return files, diags
}

// parseFile reads and parses one file, as JSON when its name ends in
// .json. what names the file's role in messages. Only a regular file of
// at most maxFileSize is read, and it is parsed only when its nesting is
// within maxNesting: HCL's parser would overflow the stack, a crash.
func (l *loader) parseFile(path, what string) (*hcl.File, hcl.Diagnostics) {
	src, err := readRegular(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read " + what,
			Detail:   err.Error() + ".",
		}}
	}
	isJSON := strings.HasSuffix(path, ".json")
	if d := checkFileNesting(src, path, isJSON); d != nil {
		// Registered so that the diagnostic shows the line.
		l.parser.AddFile(path, &hcl.File{Body: hcl.EmptyBody(), Bytes: src})
		return nil, hcl.Diagnostics{d}
	}
	if isJSON {
		return l.parser.ParseJSON(src, path)
	}
	return l.parser.ParseHCL(src, path)
}

// dedupe drops repeated diagnostics: an expression shared by every instance
// of a for_each would otherwise report the same problem once per key.
func dedupe(diags hcl.Diagnostics) hcl.Diagnostics {
	seen := map[string]bool{}
	var out hcl.Diagnostics
	for _, d := range diags {
		k := fmt.Sprintf("%d|%s|%s", d.Severity, d.Summary, d.Detail)
		if d.Subject != nil {
			k += "|" + d.Subject.String()
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, d)
	}
	return out
}

// evalContext is the scope of expressions outside variable declarations:
// var, local, functions, and (once decoded) source/converter/target.
func (l *loader) evalContext() *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":   cty.ObjectVal(l.vars),
		"local": cty.ObjectVal(l.locals),
	}
	for kind, types := range l.plugins {
		tv := map[string]cty.Value{}
		for typ, names := range types {
			tv[typ] = cty.ObjectVal(names)
		}
		vars[string(kind)] = cty.ObjectVal(tv)
	}
	return &hcl.EvalContext{Variables: vars, Functions: l.funcs}
}
