package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// The digests hash a canonical JSON document: Go structs marshal their
// fields in declaration order and cty objects their attributes sorted, so
// the same evaluated config always gives the same bytes. Sensitive values
// are left out (nulled), so a digest can be stored and shown, and changing
// a password alone does not make a saved plan stale. The absolute config
// directory is left out too: moving a checkout does not change the config.

type digestVariable struct {
	Name      string          `json:"name"`
	Type      string          `json:"type"`
	Sensitive bool            `json:"sensitive"`
	Value     json.RawMessage `json:"value,omitempty"`
}

type digestPlugin struct {
	Addr   string          `json:"addr"`
	Config json.RawMessage `json:"config"`
	// Fallback is omitted when empty: a config that sets none hashes as
	// it did when the field did not exist, so plans saved then stay valid.
	Fallback string `json:"fallback,omitempty"`
}

type digestMigration struct {
	Addr           string   `json:"addr"`
	Digest         string   `json:"digest"`
	DependsOn      []string `json:"depends_on"`
	PreventDestroy bool     `json:"prevent_destroy"`
}

type digestState struct {
	Backend   string `json:"backend"`
	Workspace string `json:"workspace"`
}

type digestConfig struct {
	Agent struct {
		StateDir     string `json:"state_dir"`
		Parallelism  int    `json:"parallelism"`
		AutoApply    bool   `json:"auto_apply"`
		Interval     string `json:"interval"`
		StatusSocket string `json:"status_socket"`
		StatusAddr   string `json:"status_addr"`
	} `json:"agent"`
	// State is omitted for the local backend, so a config without a
	// state block hashes as it did before the block existed. The
	// connection string is a secret and is left out.
	State      *digestState      `json:"state,omitempty"`
	Variables  []digestVariable  `json:"variables"`
	Plugins    []digestPlugin    `json:"plugins"`
	Migrations []digestMigration `json:"migrations"`
}

// configDigest fills each migration's Digest and returns the config's.
func configDigest(c *Config) (string, error) {
	var doc digestConfig
	doc.Agent.StateDir = relTo(c.Dir, c.Agent.StateDir)
	doc.Agent.Parallelism = c.Agent.Parallelism
	doc.Agent.AutoApply = c.Agent.AutoApply
	doc.Agent.Interval = c.Agent.Interval.String()
	doc.Agent.StatusSocket = relTo(c.Dir, c.Agent.StatusSocket)
	doc.Agent.StatusAddr = c.Agent.StatusAddr
	if c.State.Backend != "" && c.State.Backend != BackendLocal {
		doc.State = &digestState{Backend: c.State.Backend, Workspace: c.State.Workspace}
	}

	for _, name := range sortedKeys(c.Variables) {
		v := c.Variables[name]
		dv := digestVariable{Name: name, Type: typeexpr.TypeString(v.Type), Sensitive: v.Sensitive}
		if !v.Sensitive {
			b, err := ctyjson.Marshal(v.Value, v.Value.Type())
			if err != nil {
				return "", fmt.Errorf("variable %s: %w", name, err)
			}
			dv.Value = b
		}
		doc.Variables = append(doc.Variables, dv)
	}
	// Each plugin block is encoded once, here, and reused by every
	// instance's digest.
	pluginJSON := map[addrs.Plugin]json.RawMessage{}
	for _, group := range []map[string]*PluginBlock{c.Sources, c.Converters, c.Targets} {
		for _, key := range sortedKeys(group) {
			b, err := redactedJSON(group[key])
			if err != nil {
				return "", err
			}
			pluginJSON[group[key].Addr] = b
			dp := digestPlugin{Addr: group[key].Addr.String(), Config: b}
			if fb := group[key].Fallback; fb != nil {
				dp.Fallback = fb.String()
			}
			doc.Plugins = append(doc.Plugins, dp)
		}
	}
	for _, m := range c.Migrations {
		d, err := migrationDigest(m, pluginJSON)
		if err != nil {
			return "", err
		}
		m.Digest = d
		dm := digestMigration{Addr: m.Addr.String(), Digest: d, DependsOn: []string{}, PreventDestroy: m.PreventDestroy}
		for _, dep := range m.DependsOn {
			dm.DependsOn = append(dm.DependsOn, dep.String())
		}
		sort.Strings(dm.DependsOn)
		doc.Migrations = append(doc.Migrations, dm)
	}
	return hashJSON(doc)
}

type digestInstance struct {
	Source          string          `json:"source"`
	SourceConfig    json.RawMessage `json:"source_config"`
	Converter       string          `json:"converter"`
	ConverterConfig json.RawMessage `json:"converter_config"`
	Target          string          `json:"target"`
	TargetConfig    json.RawMessage `json:"target_config"`
	VM              string          `json:"vm"`
	Export          ExportSettings  `json:"export"`
	Convert         ConvertSettings `json:"convert"`
	Domain          DomainSettings  `json:"domain"`
}

// migrationDigest hashes what the instance will do: its plugins and their
// non-sensitive settings, the VM, and the export, convert and domain
// settings. Ordering (depends_on) and lifecycle are not part of it.
// pluginJSON holds each plugin block's redacted JSON; a block missing from
// it is null.
func migrationDigest(m *Migration, pluginJSON map[addrs.Plugin]json.RawMessage) (string, error) {
	doc := digestInstance{
		Source: m.Source.String(), Converter: m.Converter.String(), Target: m.Target.String(),
		VM: m.VM, Export: m.Export, Convert: m.Convert, Domain: m.Domain,
	}
	null := json.RawMessage("null")
	doc.SourceConfig, doc.ConverterConfig, doc.TargetConfig = null, null, null
	if b, ok := pluginJSON[m.Source]; ok {
		doc.SourceConfig = b
	}
	if b, ok := pluginJSON[m.Converter]; ok {
		doc.ConverterConfig = b
	}
	if b, ok := pluginJSON[m.Target]; ok {
		doc.TargetConfig = b
	}
	return hashJSON(doc)
}

// redactedJSON encodes a plugin block's config with its sensitive paths
// set to null.
func redactedJSON(pb *PluginBlock) (json.RawMessage, error) {
	if pb == nil {
		return json.RawMessage("null"), nil
	}
	v, err := cty.Transform(pb.Config, func(p cty.Path, v cty.Value) (cty.Value, error) {
		for _, sp := range pb.SensitivePaths {
			if p.Equals(sp) {
				return cty.NullVal(v.Type()), nil
			}
		}
		return v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pb.Addr, err)
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pb.Addr, err)
	}
	return b, nil
}

func hashJSON(doc any) (string, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// relTo renders p relative to dir when it lies under it.
func relTo(dir, p string) string {
	if p == "" {
		return ""
	}
	if rel, err := filepath.Rel(dir, p); err == nil {
		return filepath.ToSlash(rel)
	}
	return p
}
