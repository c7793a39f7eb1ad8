package plugins

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Set holds the plugin instances of one config, keyed by their address
// string (source.vsphere.dc1).
type Set struct {
	Sources    map[string]Source
	Converters map[string]Converter
	Targets    map[string]Target
}

// NewSet returns an empty set, for tests that fill it by hand.
func NewSet() *Set {
	return &Set{Sources: map[string]Source{}, Converters: map[string]Converter{}, Targets: map[string]Target{}}
}

// Instantiate builds one instance per plugin block of cfg.
func Instantiate(ctx context.Context, reg *Registry, cfg *schema.Config, log hclog.Logger) (*Set, error) {
	s := NewSet()
	var errs []error
	for _, group := range []map[string]*schema.PluginBlock{cfg.Sources, cfg.Converters, cfg.Targets} {
		keys := make([]string, 0, len(group))
		for k := range group {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := s.add(ctx, reg, group[k], log); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		s.Close()
		return nil, errors.Join(errs...)
	}
	return s, nil
}

func (s *Set) add(ctx context.Context, reg *Registry, b *schema.PluginBlock, log hclog.Logger) error {
	f, ok := reg.Lookup(b.Addr.Kind, b.Addr.Type)
	if !ok {
		return fmt.Errorf("%s: no %s plugin of type %q in this build", b.Addr, b.Addr.Kind, b.Addr.Type)
	}
	inst, err := f.New(ctx, NewRequest{Addr: b.Addr, Config: b.Config, Logger: log.Named(b.Addr.String())})
	if err != nil {
		return &PluginError{Addr: b.Addr, Err: err, Starting: true}
	}
	key := b.Addr.String()
	var okKind bool
	switch b.Addr.Kind {
	case addrs.KindSource:
		var v Source
		v, okKind = inst.(Source)
		s.Sources[key] = v
	case addrs.KindConverter:
		var v Converter
		v, okKind = inst.(Converter)
		s.Converters[key] = v
	case addrs.KindTarget:
		var v Target
		v, okKind = inst.(Target)
		s.Targets[key] = v
	}
	if !okKind {
		return fmt.Errorf("%s: plugin %q does not implement a %s", b.Addr, b.Addr.Type, b.Addr.Kind)
	}
	return nil
}

// LimitsOf returns the limits an instance declares, if any.
func LimitsOf(p any) Limits {
	if l, ok := p.(Limited); ok {
		return l.Limits()
	}
	return Limits{}
}

// Close releases every instance that holds connections.
func (s *Set) Close() error {
	var errs []error
	for _, group := range []map[string]any{anyMap(s.Sources), anyMap(s.Converters), anyMap(s.Targets)} {
		for k, p := range group {
			if c, ok := p.(Closer); ok {
				if err := c.Close(); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", k, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func anyMap[T any](m map[string]T) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
