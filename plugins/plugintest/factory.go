package plugintest

import (
	"context"
	"fmt"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Type is the block type of the fakes: source "fake" "x", converter
// "fake" "x", target "fake" "x".
const Type = "fake"

// blockConfig is what a fake block accepts. dir selects the file-backed
// mode, so effects persist between CLI runs; without it every run starts
// from nothing, which only suits a single command.
type blockConfig struct {
	Dir         string `cty:"dir"`
	MaxParallel int    `cty:"max_parallel"`
	DelayMS     int    `cty:"delay_ms"`
	Rounds      int    `cty:"rounds"`
	Token       string `cty:"token"`
	AbortMS     int    `cty:"abort_ms"`
	ProgressMiB int    `cty:"progress_mib"`
}

func blockSchema() schema.BlockSchema {
	return schema.BlockSchema{Attributes: []schema.AttributeSchema{
		{Name: "dir", Type: cty.String, Path: true, Required: true, Description: "directory of the fake's journals"},
		{Name: "max_parallel", Type: cty.Number, Default: cty.Zero, Description: "the instance's limit"},
		{Name: "delay_ms", Type: cty.Number, Default: cty.Zero, Description: "time each effect takes"},
		{Name: "rounds", Type: cty.Number, Default: cty.NumberIntVal(3), Description: "observations until a job ends (converter)"},
		{Name: "abort_ms", Type: cty.Number, Default: cty.Zero, Description: "time an export takes to give up once cancelled (source)"},
		{Name: "progress_mib", Type: cty.Number, Default: cty.Zero, Description: "an export reports moving a disk of this size over delay_ms (source)"},
		{Name: "token", Type: cty.String, Sensitive: true, Description: "a secret the fake ignores, to test redaction"},
	}}
}

func decode(req plugins.NewRequest) (blockConfig, error) {
	var c blockConfig
	if err := plugins.DecodeConfig(req.Config, &c); err != nil {
		return c, err
	}
	if c.Dir == "" {
		return c, plugins.Terminal(fmt.Errorf("%s: dir is required", req.Addr))
	}
	// A careless plugin: it logs its credential, so that tests prove the
	// CLI's log redaction rather than the plugins' discretion.
	if c.Token != "" && req.Logger != nil {
		req.Logger.Debug("fake configured", "addr", req.Addr.String(), "token", c.Token)
	}
	return c, nil
}

// Factories returns the factories of the fake source, converter and
// target, for a registry used by CLI tests.
func Factories() []plugins.Factory {
	return []plugins.Factory{
		{Kind: addrs.KindSource, Type: Type, Schema: blockSchema(), New: func(ctx context.Context, req plugins.NewRequest) (any, error) {
			c, err := decode(req)
			if err != nil {
				return nil, err
			}
			s, err := NewSource(req.Addr.Name, c.Dir)
			if err != nil {
				return nil, err
			}
			s.MaxParallel, s.Delay = c.MaxParallel, time.Duration(c.DelayMS)*time.Millisecond
			s.AbortDelay = time.Duration(c.AbortMS) * time.Millisecond
			s.ProgressBytes = int64(c.ProgressMiB) << 20
			return s, nil
		}},
		{Kind: addrs.KindConverter, Type: Type, Schema: blockSchema(), New: func(ctx context.Context, req plugins.NewRequest) (any, error) {
			c, err := decode(req)
			if err != nil {
				return nil, err
			}
			cv, err := NewConverter(req.Addr.Name, c.Dir)
			if err != nil {
				return nil, err
			}
			cv.MaxParallel, cv.Delay = c.MaxParallel, time.Duration(c.DelayMS)*time.Millisecond
			if c.Rounds > 0 {
				cv.Rounds = c.Rounds
			}
			return cv, nil
		}},
		{Kind: addrs.KindTarget, Type: Type, Schema: blockSchema(), New: func(ctx context.Context, req plugins.NewRequest) (any, error) {
			c, err := decode(req)
			if err != nil {
				return nil, err
			}
			t, err := NewTarget(req.Addr.Name, c.Dir)
			if err != nil {
				return nil, err
			}
			t.MaxParallel, t.Delay = c.MaxParallel, time.Duration(c.DelayMS)*time.Millisecond
			return t, nil
		}},
	}
}
