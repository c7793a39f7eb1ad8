package reconcile

import (
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Selection narrows a plan: -target (with what the targets depend on, so
// the plan can be applied) and -exclude.
type Selection struct {
	Targets  []addrs.Migration
	Excludes []addrs.Migration
}

// Select returns the config's migrations the selection keeps, in config
// order.
func (s Selection) Select(cfg *schema.Config) []*schema.Migration {
	keep := make(map[addrs.Migration]bool, len(cfg.Migrations))
	if len(s.Targets) == 0 {
		for _, m := range cfg.Migrations {
			keep[m.Addr] = true
		}
	} else {
		byName := blockIndex(cfg)
		var visit func(m *schema.Migration)
		visit = func(m *schema.Migration) {
			if keep[m.Addr] {
				return
			}
			keep[m.Addr] = true
			for _, d := range m.DependsOn {
				for _, dm := range byName[d.Name] {
					if d.Contains(dm.Addr) {
						visit(dm)
					}
				}
			}
		}
		for _, m := range cfg.Migrations {
			if s.matches(s.Targets, m.Addr) {
				visit(m)
			}
		}
	}
	out := make([]*schema.Migration, 0, len(keep))
	for _, m := range cfg.Migrations {
		if keep[m.Addr] && !s.matches(s.Excludes, m.Addr) {
			out = append(out, m)
		}
	}
	return out
}

// KeepsRemoved says whether a migration that is only in state is selected.
func (s Selection) KeepsRemoved(addr string) bool {
	a, err := addrs.ParseMigration(addr)
	if err != nil {
		return len(s.Targets) == 0
	}
	if len(s.Targets) > 0 && !s.matches(s.Targets, a) {
		return false
	}
	return !s.matches(s.Excludes, a)
}

func (s Selection) matches(list []addrs.Migration, a addrs.Migration) bool {
	for _, t := range list {
		if t.Contains(a) {
			return true
		}
	}
	return false
}

// blockIndex groups instances by block name, for depends_on.
func blockIndex(cfg *schema.Config) map[string][]*schema.Migration {
	out := map[string][]*schema.Migration{}
	for _, m := range cfg.Migrations {
		out[m.Addr.Name] = append(out[m.Addr.Name], m)
	}
	return out
}

// dependencies resolves a migration's depends_on into instance addresses.
func dependencies(m *schema.Migration, byName map[string][]*schema.Migration) []string {
	var out []string
	for _, d := range m.DependsOn {
		for _, dm := range byName[d.Name] {
			if d.Contains(dm.Addr) && dm.Addr != m.Addr {
				out = append(out, dm.Addr.String())
			}
		}
	}
	return out
}
