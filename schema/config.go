package schema

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Config is the evaluated desired state of one migration repo. Every value in
// it is plain data: expressions have been evaluated, references resolved, and
// for_each expanded into instances.
type Config struct {
	// Dir is the directory the files were loaded from.
	Dir string
	// Digest identifies the evaluated config (sha256 hex). Sensitive values
	// do not contribute to it, so it can be stored in a saved plan.
	Digest string

	Agent      AgentConfig
	State      StateConfig
	Variables  map[string]*Variable
	Sources    map[string]*PluginBlock // keyed by "TYPE.NAME", e.g. "vsphere.dc1"
	Converters map[string]*PluginBlock
	Targets    map[string]*PluginBlock
	// Migrations holds one entry per instance, sorted by address.
	Migrations []*Migration
	// Notify holds the notify "webhook" blocks, sorted by name. They are
	// not part of Digest: where the agent reports to does not change
	// what a plan does.
	Notify []*Webhook

	// StateUnknown lists the settings that place the state
	// (agent.state_dir, the state block's) left unknown because variables
	// they use are not set: only with LoadOptions.UnsetUnknown. See
	// StateLocationDiagnostics.
	StateUnknown []UnknownSetting
}

// Migration finds an instance by address.
func (c *Config) Migration(a addrs.Migration) *Migration {
	for _, m := range c.Migrations {
		if m.Addr == a {
			return m
		}
	}
	return nil
}

// PluginBlock is the source, converter or target block whose address is
// addr ("source.vsphere.dc1"), or nil.
func (c *Config) PluginBlock(addr string) *PluginBlock {
	for _, group := range []map[string]*PluginBlock{c.Sources, c.Converters, c.Targets} {
		for _, b := range group {
			if b.Addr.String() == addr {
				return b
			}
		}
	}
	return nil
}

// Secrets returns every sensitive string value in the config (variables
// marked sensitive, plugin attributes declared sensitive, the state
// backend's connection string with its password, webhook secrets and
// sensitive webhook URLs), so that output and logs can redact them.
func (c *Config) Secrets() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range connStrSecrets(c.State.ConnStr) {
		add(s)
	}
	for _, w := range c.Notify {
		add(w.Secret)
		if w.URLSensitive {
			add(w.URL)
		}
	}
	for _, v := range c.Variables {
		if v.Sensitive {
			collectStrings(v.Value, add)
		}
	}
	for _, group := range []map[string]*PluginBlock{c.Sources, c.Converters, c.Targets} {
		for _, b := range group {
			for _, p := range b.SensitivePaths {
				if v, err := p.Apply(b.Config); err == nil {
					collectStrings(v, add)
				}
			}
		}
	}
	return out
}

func collectStrings(v cty.Value, add func(string)) {
	if v.IsNull() || !v.IsKnown() {
		return
	}
	switch {
	case v.Type() == cty.String:
		add(v.AsString())
	case v.CanIterateElements():
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			collectStrings(e, add)
		}
	}
}

// AgentConfig is the optional `agent {}` block.
type AgentConfig struct {
	StateDir     string        // default ".hyperagent" under the config dir
	Parallelism  int           // default 10
	AutoApply    bool          // agent applies without a person
	Interval     time.Duration // periodic re-observation; default 30s
	RetryMin     time.Duration // the agent's first wait before retrying a failed migration
	RetryMax     time.Duration // its longest wait
	StatusSocket string        // unix socket of the status API
	StatusAddr   string        // optional TCP address
	// StatusTokenFile holds the bearer token the status API requires
	// over TCP (mandatory outside loopback).
	StatusTokenFile string
}

// Variable is a declared input variable with its final value.
type Variable struct {
	Name        string
	Description string
	Type        cty.Type
	Value       cty.Value // unmarked; check Sensitive before printing
	Sensitive   bool
	DeclRange   hcl.Range

	// Set says the value was given (-var, -var-file, the environment, a
	// saved plan) rather than left at its default.
	Set bool
	// Secret says the value reaches a sensitive setting (a plugin's
	// sensitive attribute, the state's conn_str) though the variable is
	// not marked sensitive: it is a secret all the same.
	Secret bool
}

// PluginBlock is a declared source, converter or target block, decoded
// against the schema its plugin declared.
type PluginBlock struct {
	Addr addrs.Plugin
	// Config is an object with one attribute per declared attribute and
	// nested block. It is wholly known and carries no marks; optional
	// attributes that were not set hold their Default, or null.
	Config         cty.Value
	SensitivePaths []cty.Path
	// Fallback is the converter a converter block names as its fallback
	// (`fallback = converter.TYPE.NAME`, a meta-argument: it is not part
	// of Config). It is always another declared converter, without a
	// fallback of its own; nil when not set, and for sources and targets.
	Fallback *addrs.Plugin
	// AttrRanges holds where the value of each top-level attribute set
	// in the block was written, by attribute name (fallback included), so
	// that a failure a value causes at run time (plugins.AttrError) can
	// be shown at its file:line. Attributes left unset have no entry.
	AttrRanges map[string]hcl.Range
	DeclRange  hcl.Range
}

// Migration is one instance of a `migration` block.
type Migration struct {
	Addr addrs.Migration

	Source    addrs.Plugin
	VM        string // the VM's inventory path or, for a files source, a path
	Converter addrs.Plugin
	Target    addrs.Plugin

	Export  ExportSettings
	Convert ConvertSettings
	Domain  DomainSettings

	// DependsOn lists migrations that must be defined before this one
	// starts. An entry without a key names every instance of that block.
	DependsOn      []addrs.Migration
	PreventDestroy bool

	// Digest identifies the evaluated settings of this instance (sha256
	// hex); a change after the work was done shows as an update or replace.
	Digest    string
	DeclRange hcl.Range
}

// ExportSettings is the migration's `export {}` block.
type ExportSettings struct {
	Dir             string        // required: where exported files go
	PowerOff        bool          // power the VM off before export
	ShutdownTimeout time.Duration // guest shutdown before hard power-off; default 5m
	RestorePower    bool          // power back on if the export fails; default true
}

// ConvertSettings is the migration's `convert {}` block.
type ConvertSettings struct {
	Format        string // qcow2 (default) | raw
	Compress      bool
	CompressLevel int // 1–9; 0 means the converter's default
	Inspect       bool
	Fix           FixSettings
	Validate      bool // default true
}

// FixSettings is `convert { fix {} }`. A fix block that is present is
// enabled unless it says enabled = false.
type FixSettings struct {
	Enabled           bool
	Fstab             string // e.g. "stabilize-all"
	Grub              bool
	Initramfs         bool
	RemoveVMwareTools bool
	Backup            bool
}

// DomainSettings is the migration's `domain {}` block.
type DomainSettings struct {
	Name      string // default: the VM's name
	MemoryMiB int64  // from "4GiB", "512MiB"; 0 means as the source VM
	VCPUs     int    // 0 means as the source VM
	Network   string // a libvirt network for every NIC, overriding the target's network_map
	Start     bool
}
