package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// StaleError says a saved plan no longer matches what it was made from.
type StaleError struct{ Moved []string }

func (e *StaleError) Error() string {
	return "the saved plan is stale, make a new one:\n  - " + strings.Join(e.Moved, "\n  - ")
}

// CheckStale re-reads what a saved plan is bound to: the config digest,
// the state's lineage and serial, and every involved VM's fingerprint (one
// batched observation per source). It names every input that moved.
func CheckStale(ctx context.Context, p *Plan, cfg *schema.Config, st *State, set *plugins.Set) error {
	var moved []string
	if p.ConfigDigest != cfg.Digest {
		moved = append(moved, fmt.Sprintf("the configuration changed (digest %s → %s)", short(p.ConfigDigest), short(cfg.Digest)))
	}
	// A plan made before the first write has no lineage; the state that
	// write created is "written since", not "a different one".
	if p.Prior.Lineage != "" && p.Prior.Lineage != st.Lineage {
		moved = append(moved, fmt.Sprintf("the state is a different one (lineage %q → %q)", p.Prior.Lineage, st.Lineage))
	} else if p.Prior.Serial != st.Serial {
		moved = append(moved, fmt.Sprintf("the state was written since (serial %d → %d)", p.Prior.Serial, st.Serial))
	}
	queries := map[string][]plugins.VMQuery{}
	for _, a := range sortedKeys(p.Fingerprints) {
		c := p.Change(a)
		if c == nil {
			continue
		}
		queries[c.Source] = append(queries[c.Source], plugins.VMQuery{Address: a, Path: c.VM})
	}
	for _, src := range sortedKeys(queries) {
		s, ok := set.Sources[src]
		if !ok {
			moved = append(moved, fmt.Sprintf("%s is no longer configured", src))
			continue
		}
		resp, err := s.ObserveVMs(ctx, plugins.ObserveVMsRequest{VMs: queries[src]})
		if err != nil {
			return fmt.Errorf("observe VMs of %s: %w", src, err)
		}
		for _, q := range queries[src] {
			vm := resp.VMs[q.Address]
			switch want := p.Fingerprints[q.Address]; {
			case !vm.Found:
				moved = append(moved, fmt.Sprintf("the source VM of %s (%s) is gone", q.Address, q.Path))
			case vm.Fingerprint != want:
				moved = append(moved, fmt.Sprintf("the source VM of %s changed (fingerprint %s → %s)", q.Address, want, vm.Fingerprint))
			}
		}
	}
	if len(moved) > 0 {
		return &StaleError{Moved: moved}
	}
	return nil
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	if d == "" {
		return "(none)"
	}
	return d
}
