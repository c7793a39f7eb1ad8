package jsondoc

import (
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
)

// State is the state as a document (docs/schema/state.json): the records
// as the state file holds them, as a list sorted by address.
type State struct {
	FormatVersion     string                      `json:"format_version"`
	HyperagentVersion string                      `json:"hyperagent_version"`
	Lineage           string                      `json:"lineage"`
	Serial            uint64                      `json:"serial"`
	SuspendedAll      *time.Time                  `json:"suspended_all"`
	Migrations        []*reconcile.MigrationState `json:"migrations"`
}

// NewState renders st; version is the hyperagent that renders it. The
// records are deep copies, their nil lists made empty.
func NewState(st *reconcile.State, version string) State {
	st = st.Clone()
	out := State{FormatVersion: FormatVersion, HyperagentVersion: version, Lineage: st.Lineage, Serial: st.Serial,
		SuspendedAll: st.SuspendedAll, Migrations: make([]*reconcile.MigrationState, 0, len(st.Migrations))}
	for _, a := range st.Addresses() {
		out.Migrations = append(out.Migrations, st.Migrations[a])
	}
	FillEmpty(&out)
	return out
}
