package schema

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Agent defaults.
const (
	DefaultStateDir    = ".hyperagent"
	DefaultParallelism = 64
	DefaultInterval    = 30 * time.Second
	DefaultRetryMin    = 30 * time.Second
	DefaultRetryMax    = 30 * time.Minute
)

var agentSchema = BlockSchema{
	Attributes: []AttributeSchema{
		{Name: "state_dir", Type: cty.String, Default: cty.StringVal(DefaultStateDir), Description: "state and lock; relative to the config directory"},
		{Name: "parallelism", Type: cty.Number, Default: cty.NumberIntVal(DefaultParallelism)},
		{Name: "auto_apply", Type: cty.Bool, Default: cty.False},
		{Name: "interval", Type: cty.String, Default: cty.StringVal(DefaultInterval.String()), Description: "the agent's periodic re-observation, besides file events"},
		{Name: "retry_min", Type: cty.String, Default: cty.StringVal(DefaultRetryMin.String()), Description: "first wait before the agent retries a failed migration"},
		{Name: "retry_max", Type: cty.String, Default: cty.StringVal(DefaultRetryMax.String()), Description: "longest wait between the agent's retries of a migration"},
		{Name: "status_socket", Type: cty.String, Description: "unix socket of the status API (mode 0660)"},
		{Name: "status_addr", Type: cty.String, Description: "HOST:PORT of the status API over TCP; outside loopback it needs status_token_file"},
		{Name: "status_token_file", Type: cty.String, Description: "file holding the bearer token (16 bytes or more, not readable by others) the status API requires over TCP; relative to the config directory"},
	},
}

// loadAgent decodes the optional `agent {}` block; without one, every
// setting takes its default.
func (l *loader) loadAgent(blocks hcl.Blocks) hcl.Diagnostics {
	l.cfg.Agent = AgentConfig{
		StateDir:    resolve(l.dir, DefaultStateDir),
		Parallelism: DefaultParallelism,
		Interval:    DefaultInterval,
		RetryMin:    DefaultRetryMin,
		RetryMax:    DefaultRetryMax,
	}
	if len(blocks) == 0 {
		return nil
	}
	diags := duplicateBlocks("agent", blocks)
	d := l.newDecoder(l.evalContext())
	v, ds := d.decode(blocks[0].Body, agentSchema, "")
	diags = append(diags, ds...)
	v, ds = d.plain(v, "agent")
	diags = append(diags, ds...)
	if ds.HasErrors() {
		return diags
	}
	get := func(name string) (cty.Value, bool) {
		a := v.GetAttr(name)
		return a, a.IsKnown() && !a.IsNull()
	}
	a := &l.cfg.Agent
	if !v.GetAttr("state_dir").IsKnown() {
		l.unknownStateSetting(blocks[0].Body, "agent", "state_dir", "")
	}
	if s, ok := get("state_dir"); ok {
		a.StateDir = resolve(l.dir, s.AsString())
	}
	if n, ok := get("parallelism"); ok {
		if i, isInt := asInt(n); !isInt || i < 1 || i > 10000 {
			diags = append(diags, d.invalid("parallelism", "Invalid parallelism", "parallelism must be a whole number from 1 to 10000."))
		} else {
			a.Parallelism = int(i)
		}
	}
	if b, ok := get("auto_apply"); ok {
		a.AutoApply = b.True()
	}
	if s, ok := get("interval"); ok {
		dur, err := time.ParseDuration(s.AsString())
		if err != nil || dur <= 0 {
			diags = append(diags, d.invalid("interval", "Invalid duration", fmt.Sprintf("interval must be a positive duration such as \"30s\" or \"5m\", not %q.", s.AsString())))
		} else {
			a.Interval = dur
		}
	}
	for _, name := range []string{"retry_min", "retry_max"} {
		s, ok := get(name)
		if !ok {
			continue
		}
		dur, err := time.ParseDuration(s.AsString())
		if err != nil || dur <= 0 {
			diags = append(diags, d.invalid(name, "Invalid duration", fmt.Sprintf("%s must be a positive duration such as \"30s\" or \"30m\", not %q.", name, s.AsString())))
			continue
		}
		if name == "retry_min" {
			a.RetryMin = dur
		} else {
			a.RetryMax = dur
		}
	}
	if a.RetryMax < a.RetryMin {
		diags = append(diags, d.invalid("retry_max", "Invalid retry bounds", fmt.Sprintf("retry_max (%s) must not be shorter than retry_min (%s).", a.RetryMax, a.RetryMin)))
	}
	if s, ok := get("status_socket"); ok {
		a.StatusSocket = resolve(l.dir, s.AsString())
	}
	if s, ok := get("status_addr"); ok {
		a.StatusAddr = s.AsString()
	}
	if s, ok := get("status_token_file"); ok {
		a.StatusTokenFile = resolve(l.dir, s.AsString())
	}
	return diags
}

// duplicateBlocks reports every block of a kind that allows one after the
// first.
func duplicateBlocks(kind string, blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, dup := range blocks[1:] {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Duplicate " + kind + " block",
			Detail:   fmt.Sprintf("Only one %s block is allowed; the first is at %s.", kind, blocks[0].DefRange),
			Subject:  dup.DefRange.Ptr(),
		})
	}
	return diags
}
