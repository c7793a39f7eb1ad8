package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// ledgerVersion is the version of the ledger file.
const ledgerVersion = 1

// ledger records, per migration, the transitions already queued: the
// value that made each one unique. A transition whose value differs from
// the ledger's is new. It moves on only once the transition's events are
// in the outbox, so what it lacks after a crash is queued again.
type ledger struct {
	FormatVersion int `json:"format_version"`
	// Campaign is the lineage of the state the ledger follows; empty
	// while no state was written.
	Campaign   string           `json:"campaign"`
	Migrations map[string]*seen `json:"migrations"`

	// baseline says the ledger starts now (there was none, or notifying
	// was off): the next state seen is taken as already notified.
	baseline bool
	// dirty says the ledger moved since written; urgent that it must be
	// written before the next transition is looked for (it started
	// afresh, or took a campaign).
	dirty, urgent bool
}

// seen is what was queued of one migration.
type seen struct {
	Migrated time.Time `json:"migrated,omitzero"` // defined_at
	Failed   time.Time `json:"failed,omitzero"`   // last_error.at
	// JobFailed and Stalled are the jobs the plan saw failed or stalled.
	JobFailed string `json:"job_failed,omitempty"`
	Stalled   string `json:"stalled,omitempty"`
	// Drift is what drifted: the same drift seen again before it was
	// dealt with is not new (a retry that fails to mend it included).
	Drift string `json:"drift,omitempty"`

	// updated is the record's updated_at as last loaded or written.
	updated time.Time
}

func newLedger() *ledger {
	return &ledger{FormatVersion: ledgerVersion, Migrations: map[string]*seen{}}
}

// readLedger reads path; none yet means a ledger that starts now.
func readLedger(path string) (*ledger, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		l := newLedger()
		l.baseline = true
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the notifications ledger: %w", err)
	}
	l := newLedger()
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if l.FormatVersion != ledgerVersion {
		return nil, fmt.Errorf("%s: format_version %d is not supported by this build (want %d)", path, l.FormatVersion, ledgerVersion)
	}
	if l.Migrations == nil {
		l.Migrations = map[string]*seen{}
	}
	return l, nil
}

func (l *ledger) write(path string) error {
	// Only what was queued: a migration with nothing told is no entry.
	doc := ledger{FormatVersion: l.FormatVersion, Campaign: l.Campaign, Migrations: make(map[string]*seen, len(l.Migrations))}
	for a, sn := range l.Migrations {
		if !sn.Migrated.IsZero() || !sn.Failed.IsZero() || sn.JobFailed != "" || sn.Stalled != "" || sn.Drift != "" {
			doc.Migrations[a] = sn
		}
	}
	b, err := json.Marshal(&doc)
	if err != nil {
		return fmt.Errorf("encoding the notifications ledger: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("notifications ledger: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, b, 0o600); err != nil {
		return err
	}
	l.dirty, l.urgent = false, false
	return nil
}

// pending is a transition found new: its event, and how the ledger moves
// on once the event is queued.
type pending struct {
	ev     Event
	commit func()
}

// fromState finds the transitions st records that the ledger lacks: a
// domain defined, a step failed (an interruption is not a failure). It
// forgets migrations st no longer holds. A ledger that starts now takes
// st as notified.
func (l *ledger) fromState(st *reconcile.State) []pending {
	if st.Lineage == "" {
		// Nothing written yet: the campaign's every transition will be
		// news, from the first write that gives it a lineage.
		if l.baseline || l.Campaign != "" || len(l.Migrations) > 0 {
			l.baseline, l.Campaign, l.Migrations = false, "", map[string]*seen{}
			l.dirty, l.urgent = true, true
		}
		return nil
	}
	if l.Campaign != st.Lineage {
		// Another campaign's state (a state pushed over, another
		// workspace): its history is not news.
		l.baseline = l.baseline || l.Campaign != ""
		l.Campaign, l.dirty, l.urgent = st.Lineage, true, true
	}
	for a := range l.Migrations {
		if st.Migrations[a] == nil {
			delete(l.Migrations, a)
			l.dirty = true
		}
	}
	var out []pending
	for a, ms := range st.Migrations {
		out = append(out, l.check(st.Lineage, a, ms)...)
	}
	if l.baseline {
		l.baseline, l.dirty, l.urgent = false, true, true
	}
	return out
}

// fromRecord is fromState for one record written alone (a store shared
// by several processes): the transitions of that record. A record of
// another campaign than the ledger's, or seen before the ledger took its
// first state, or deleted, waits for the next whole state, which settles
// those.
func (l *ledger) fromRecord(campaign, addr string, ms *reconcile.MigrationState) []pending {
	if ms == nil || campaign == "" || campaign != l.Campaign || l.baseline {
		return nil
	}
	return l.check(campaign, addr, ms)
}

// check finds the transitions of one record that the ledger lacks; a
// ledger that starts now takes them as notified.
func (l *ledger) check(campaign, a string, ms *reconcile.MigrationState) []pending {
	sn := l.Migrations[a]
	if sn == nil {
		sn = &seen{}
		l.Migrations[a] = sn
	}
	sn.updated = ms.UpdatedAt
	var defined, failed time.Time
	if ms.Domain != nil && ms.DefinedAt != nil {
		defined = *ms.DefinedAt
	}
	if e := ms.LastError; e != nil && !strings.HasPrefix(e.Message, "interrupted: ") {
		failed = e.At
	}
	if l.baseline {
		sn.Migrated, sn.Failed = defined, failed
		return nil
	}
	var out []pending
	if !defined.Equal(sn.Migrated) {
		if defined.IsZero() {
			sn.Migrated, l.dirty = defined, true
		} else {
			out = append(out, pending{ev: migratedEvent(campaign, a, ms), commit: func() { sn.Migrated, l.dirty = defined, true }})
		}
	}
	if !failed.Equal(sn.Failed) {
		if failed.IsZero() {
			sn.Failed, l.dirty = failed, true
		} else {
			out = append(out, pending{ev: failedEvent(campaign, a, ms), commit: func() { sn.Failed, l.dirty = failed, true }})
		}
	}
	return out
}

func migratedEvent(campaign, addr string, ms *reconcile.MigrationState) Event {
	at := *ms.DefinedAt
	ev := Event{Type: schema.NotifyMigrated, Campaign: campaign, Address: addr, Phase: reconcile.PhaseDefined,
		Step: reconcile.StepDefine, Domain: ms.Domain.Name, OccurredAt: at,
		ID: eventID(campaign, addr, schema.NotifyMigrated, at.UTC().Format(time.RFC3339Nano))}
	if ms.Job != nil {
		ev.JobID = ms.Job.ID
	}
	return ev
}

func failedEvent(campaign, addr string, ms *reconcile.MigrationState) Event {
	e := ms.LastError
	ev := Event{Type: schema.NotifyFailed, Campaign: campaign, Address: addr, Phase: reconcile.PhaseFailed,
		Step: e.Step, Error: e.Message, OccurredAt: e.At,
		ID: eventID(campaign, addr, schema.NotifyFailed, e.At.UTC().Format(time.RFC3339Nano))}
	if ms.Job != nil && (e.Step == reconcile.StepSubmit || e.Step == reconcile.StepAwait) {
		ev.JobID = ms.Job.ID
	}
	return ev
}

// fromPlan finds the conditions p observed that the ledger lacks: a job
// the converter failed, a stalled job, drift. A condition gone clears its
// entry, so that it is news when it comes back.
func (l *ledger) fromPlan(p *reconcile.Plan, now time.Time) []pending {
	if l.baseline || p.Lineage == "" || p.Lineage != l.Campaign {
		return nil // the state was not seen yet (or is another's)
	}
	var out []pending
	for i := range p.Changes {
		c := &p.Changes[i]
		sn := l.Migrations[c.Address]
		if sn == nil {
			if c.Condition == nil {
				continue
			}
			sn = &seen{}
			l.Migrations[c.Address] = sn
		}
		var jobFailed, stalled, drift string
		if cd := c.Condition; cd != nil {
			switch cd.Kind {
			case reconcile.ConditionJobFailed:
				jobFailed = cd.JobID
			case reconcile.ConditionJobStalled:
				stalled = cd.JobID
			case reconcile.ConditionDrift:
				drift = cd.Detail
			}
		}
		slots := []struct {
			now  string
			was  *string
			kind string
		}{{jobFailed, &sn.JobFailed, schema.NotifyFailed}, {stalled, &sn.Stalled, schema.NotifyStalled}, {drift, &sn.Drift, schema.NotifyDrift}}
		for _, s := range slots {
			if s.now == *s.was {
				continue
			}
			if s.now == "" {
				*s.was, l.dirty = "", true
				continue
			}
			was, v := s.was, s.now
			unique := v
			if s.kind == schema.NotifyDrift {
				// The same drift back after it was mended is another
				// transition: the record was written since.
				unique += "@" + sn.updated.UTC().Format(time.RFC3339Nano)
			}
			out = append(out, pending{ev: conditionEvent(p.Lineage, c, s.kind, unique, now), commit: func() { *was, l.dirty = v, true }})
		}
	}
	return out
}

// conditionEvent is the event of a change's condition; unique is the
// ledger's value for it.
func conditionEvent(campaign string, c *reconcile.Change, typ, unique string, now time.Time) Event {
	cd := c.Condition
	ev := Event{Type: typ, Campaign: campaign, Address: c.Address, Phase: c.Phase, JobID: cd.JobID,
		OccurredAt: now, ID: eventID(campaign, c.Address, string(cd.Kind), unique)}
	switch cd.Kind {
	case reconcile.ConditionJobFailed:
		ev.Step, ev.Error = reconcile.StepAwait, cd.Detail
	case reconcile.ConditionJobStalled:
		ev.Step, ev.Detail = reconcile.StepAwait, cd.Detail
	default:
		ev.Detail = cd.Detail
		if len(c.Steps) > 0 {
			ev.Step = c.Steps[0].Kind
		}
	}
	return ev
}
