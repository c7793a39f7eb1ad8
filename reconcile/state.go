package reconcile

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

// StateFormatVersion is the version of the state file format.
const StateFormatVersion = 1

// State is hyperagent's record of what it did. It holds no config values
// except addresses and digests, so it never carries a secret. Observation,
// not State, is the truth about the world: State says which artifacts and
// jobs are ours and what they were when we made them.
type State struct {
	FormatVersion int    `json:"format_version"`
	Lineage       string `json:"lineage"` // a UUID fixed when the state is created
	Serial        uint64 `json:"serial"`  // +1 on every write
	// SuspendedAll, when set, holds every migration: no step runs until
	// it is resumed (hyperagent agent resume -all).
	SuspendedAll *time.Time `json:"suspended_all,omitempty"`
	// Migrations is keyed by migration address.
	Migrations map[string]*MigrationState `json:"migrations"`
}

// IsSuspended says whether the migration's steps are held.
func (s *State) IsSuspended(addr string) bool {
	if s.SuspendedAll != nil {
		return true
	}
	ms := s.Migrations[addr]
	return ms != nil && ms.Suspended != nil
}

// NewState returns an empty state. Its lineage is assigned by the first
// write (Store.Write), so that a plan against no state binds to "none".
func NewState() *State {
	return &State{FormatVersion: StateFormatVersion, Migrations: map[string]*MigrationState{}}
}

// MigrationState is the record of one migration instance.
type MigrationState struct {
	Address string `json:"address"`
	// Origin is the address the migration's artifacts (export
	// directory, jobs, domain) are named after and owned by, when it is
	// not Address: the one it had when `state mv` gave the record a new
	// address, or a suffixed one for a new migration given an address
	// another record's artifacts use (Identity).
	Origin    string `json:"origin,omitempty"`
	Source    string `json:"source"` // plugin addresses, so a removed migration can still be pruned
	Converter string `json:"converter"`
	Target    string `json:"target"`
	VM        string `json:"vm"`
	// ConfigDigest is the migration's digest when its last step completed.
	ConfigDigest string `json:"config_digest,omitempty"`
	// Digests are the parts of the settings each step consumed; comparing
	// them with the config tells a redefine from a reconversion.
	Digests        StepDigests `json:"digests"`
	PreventDestroy bool        `json:"prevent_destroy,omitempty"`

	// Fingerprint is the source VM's fingerprint at export.
	Fingerprint string `json:"fingerprint,omitempty"`
	// ExportStartedAt records the intent to export; an export with a start
	// and no result was interrupted.
	ExportStartedAt *time.Time            `json:"export_started_at,omitempty"`
	Export          *plugins.ExportResult `json:"export,omitempty"`

	// Attempts is the highest job attempt ever used; a new job uses +1 so
	// that its id is never one the converter has seen.
	Attempts int              `json:"attempts,omitempty"`
	Job      *JobRecord       `json:"job,omitempty"`
	Outputs  []plugins.Output `json:"outputs,omitempty"`
	// DefineStartedAt records the intent to define: a target may move
	// the converted disks into its storage before the domain is
	// defined, so outputs gone after an interrupted definition are
	// looked for there (defined again) rather than converted again.
	DefineStartedAt *time.Time             `json:"define_started_at,omitempty"`
	Domain          *plugins.DefinedDomain `json:"domain,omitempty"`
	// DefinedAt is when the domain was last defined: each define, also
	// one that redefines the same domain, sets it anew.
	DefinedAt *time.Time `json:"defined_at,omitempty"`

	LastError *ErrorRecord `json:"last_error,omitempty"`
	// Suspended, when set, holds the migration: no step runs until it is
	// resumed (hyperagent agent suspend ADDR).
	Suspended *time.Time `json:"suspended,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// StepDigests are sha256 digests of the settings each step used.
type StepDigests struct {
	Export  string `json:"export,omitempty"`
	Convert string `json:"convert,omitempty"`
	Define  string `json:"define,omitempty"`
}

// JobRecord is a converter job. It is written with SubmittedAt unset before
// Submit is called (the intent), so a run killed during Submit recognises
// the job on the next observation instead of submitting it again.
type JobRecord struct {
	Converter   string           `json:"converter"`
	ID          string           `json:"id"`
	Attempt     int              `json:"attempt"`
	SubmittedAt *time.Time       `json:"submitted_at,omitempty"`
	State       plugins.JobState `json:"state,omitempty"` // as last observed
}

// ErrorRecord is the last failure of a migration.
type ErrorRecord struct {
	Step    StepKind  `json:"step"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Addresses lists the recorded migrations, sorted.
func (s *State) Addresses() []string {
	out := make([]string, 0, len(s.Migrations))
	for a := range s.Migrations {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Clone returns a deep copy (through JSON: State is plain data).
func (s *State) Clone() *State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("state is not marshallable: %v", err))
	}
	out, err := DecodeState(b)
	if err != nil {
		panic(fmt.Sprintf("state does not round-trip: %v", err))
	}
	return out
}

// DecodeState parses a state file and checks its version.
func DecodeState(b []byte) (*State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decoding state: %w", err)
	}
	if s.FormatVersion != StateFormatVersion {
		return nil, fmt.Errorf("state format_version %d is not supported by this build (want %d)", s.FormatVersion, StateFormatVersion)
	}
	if s.Migrations == nil {
		s.Migrations = map[string]*MigrationState{}
	}
	return &s, nil
}

// Encode renders the state as indented JSON.
func (s *State) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return append(b, '\n'), nil
}
