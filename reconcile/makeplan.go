package reconcile

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// PlanRequest is what Plan needs besides the config and state.
type PlanRequest struct {
	Selection Selection
	Replace   []addrs.Migration
	Refresh   bool // observe the plugins (false: state alone)
	// NewLineage is the campaign a plan against no state yet names its
	// artifacts with; empty means a new random one.
	NewLineage string
	// Log is told, at debug level, what planning does: each plugin
	// instance observed and how long it took, and the steps chosen for
	// each migration. nil logs nothing.
	Log hclog.Logger
}

// MakePlan observes (unless Refresh is false) and diffs. It is the one way
// the CLI and the agent compute a plan.
func MakePlan(ctx context.Context, cfg *schema.Config, st *State, set *plugins.Set, req PlanRequest) (*Plan, error) {
	lineage := st.Lineage
	if lineage == "" {
		if lineage = req.NewLineage; lineage == "" {
			lineage = uuid.NewString()
		}
	}
	log := req.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var obs *Observed
	if req.Refresh {
		selected := req.Selection.Select(cfg)
		start := time.Now()
		var err error
		if obs, err = observe(ctx, cfg, st, lineage, set, selected, log); err != nil {
			return nil, err
		}
		log.Debug("observed", "migrations", len(selected), "took", time.Since(start))
	} else {
		log.Debug("not observing (refresh off): planning from the state alone")
	}
	p := Diff(DiffRequest{
		Config: cfg, State: st, Observed: obs, Selection: req.Selection, Replace: req.Replace, NewLineage: lineage,
		CanPrune: func(src string) bool {
			_, ok := set.Sources[src].(plugins.ExportPruner)
			return ok
		},
	})
	for _, c := range p.Changes {
		kinds := make([]string, len(c.Steps))
		for i, s := range c.Steps {
			kinds[i] = string(s.Kind)
		}
		log.Debug("planned", "address", c.Address, "action", c.Action, "phase", c.Phase, "steps", strings.Join(kinds, " "),
			"reason", c.Reason, "blocked", c.Blocked, "suspended", c.Suspended)
	}
	return p, nil
}
