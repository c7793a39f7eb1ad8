package reconcile

import (
	"errors"
	"strconv"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// ConfigPlace is where in the configuration the value behind a failure
// was written: a plugin block's attribute.
type ConfigPlace struct {
	Plugin string `json:"plugin"`
	Attr   string `json:"attribute"`
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// String is "uri of target.libvirt.kvm (main.hcl:12:3)".
func (p *ConfigPlace) String() string {
	s := p.Attr + " of " + p.Plugin
	if p.File != "" {
		s += " (" + p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Column) + ")"
	}
	return s
}

// PlaceOf finds the attribute behind err (a *plugins.ConfigError in its
// chain) in the block of plugin; nil when err says none.
func PlaceOf(cfg *schema.Config, plugin string, err error) *ConfigPlace {
	var ce *plugins.ConfigError
	if err == nil || !errors.As(err, &ce) {
		return nil
	}
	var ie *plugins.PluginError
	if errors.As(err, &ie) {
		plugin = ie.Addr.String()
	}
	p := &ConfigPlace{Plugin: plugin, Attr: ce.Attr}
	if b := cfg.PluginBlock(plugin); b != nil {
		r, ok := b.AttrRanges[ce.Attr]
		if !ok {
			r = b.DeclRange
		}
		p.File, p.Line, p.Column = r.Filename, r.Start.Line, r.Start.Column
	}
	return p
}
