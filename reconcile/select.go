package reconcile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
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

// UnmatchedError is a -target, -exclude or -replace address that names
// nothing in the configuration (or, for -target and -exclude, in the
// state), with the closest addresses that exist.
type UnmatchedError struct {
	Flag    string
	Addr    string
	Closest []string
}

func (e *UnmatchedError) Error() string {
	msg := fmt.Sprintf("-%s=%s names no migration", e.Flag, e.Addr)
	if len(e.Closest) > 0 {
		msg += "; did you mean " + strings.Join(e.Closest, ", ") + "?"
	}
	return msg
}

// CheckAddresses refuses, as Terraform does, a selection or replacement
// that names nothing: a typo in -target would otherwise plan everything
// it was meant to narrow, or nothing at all.
func CheckAddresses(cfg *schema.Config, st *State, sel Selection, replace []addrs.Migration) error {
	known := map[string]addrs.Migration{}
	for _, m := range cfg.Migrations {
		known[m.Addr.String()] = m.Addr
	}
	inState := map[string]addrs.Migration{}
	for a := range st.Migrations {
		if m, err := addrs.ParseMigration(a); err == nil {
			inState[a] = m
		}
	}
	check := func(flag string, list []addrs.Migration, withState bool) error {
		for _, want := range list {
			pool := []map[string]addrs.Migration{known}
			if withState {
				pool = append(pool, inState)
			}
			found := false
			var names []string
			for _, p := range pool {
				for s, a := range p {
					found = found || want.Contains(a)
					names = append(names, s)
				}
			}
			if !found {
				return &UnmatchedError{Flag: flag, Addr: want.String(), Closest: Closest(want.String(), names)}
			}
		}
		return nil
	}
	if err := check("target", sel.Targets, true); err != nil {
		return err
	}
	if err := check("exclude", sel.Excludes, true); err != nil {
		return err
	}
	return check("replace", replace, false)
}

// Closest lists up to three names within a few edits of s, nearest
// first: the suggestions under an unknown address or command.
func Closest(s string, names []string) []string {
	type cand struct {
		name string
		d    int
	}
	seen := map[string]bool{}
	var cs []cand
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if d := levenshtein.Distance(s, n, nil); d <= max(2, len(s)/4) {
			cs = append(cs, cand{n, d})
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	var out []string
	for i := 0; i < len(cs) && i < 3; i++ {
		out = append(out, cs[i].name)
	}
	return out
}
