package reconcile

import (
	"context"

	"github.com/google/uuid"

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
	var obs *Observed
	if req.Refresh {
		var err error
		if obs, err = Observe(ctx, cfg, st, lineage, set, req.Selection.Select(cfg)); err != nil {
			return nil, err
		}
	}
	return Diff(DiffRequest{
		Config: cfg, State: st, Observed: obs, Selection: req.Selection, Replace: req.Replace, NewLineage: lineage,
		CanPrune: func(src string) bool {
			_, ok := set.Sources[src].(plugins.ExportPruner)
			return ok
		},
	}), nil
}
