package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// retries is the agent's memory of failed migrations. A retryable failure
// holds the migration for an exponentially growing, capped wait; a
// terminal one holds it until its configuration or its source VM changes
// (a person has to do something). Success forgets the migration.
type retries struct {
	mu   sync.Mutex
	min  time.Duration
	max  time.Duration
	now  func() time.Time
	byID map[string]*retry
}

type retry struct {
	b        *backoff.ExponentialBackOff
	attempts int
	next     time.Time // retryable: held until then
	err      string
	step     reconcile.StepKind
	terminal bool
	// What a terminal failure waits to see change.
	digest, fingerprint string
}

// RetryStatus is one held migration, for Status.
type RetryStatus struct {
	Address  string             `json:"address"`
	Step     reconcile.StepKind `json:"step"`
	Error    string             `json:"error"`
	Attempts int                `json:"attempts"`
	Terminal bool               `json:"terminal"`
	Next     *time.Time         `json:"next,omitempty"` // retryable only
}

func newRetries(now func() time.Time) *retries {
	return &retries{now: now, byID: map[string]*retry{}}
}

// bounds sets the waits (from the config, which may change on reload).
func (r *retries) bounds(min, max time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.min, r.max = min, max
}

// record learns from an apply's result: failures back off, successes and
// hand-offs to the converter are forgotten.
func (r *retries) record(cfg *schema.Config, p *reconcile.Plan, res *reconcile.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range res.Migrated {
		delete(r.byID, a)
	}
	for _, w := range res.Waiting {
		delete(r.byID, w.Address)
	}
	for _, f := range res.Failed {
		rt := r.byID[f.Address]
		if rt == nil {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval, b.MaxInterval, b.Multiplier, b.RandomizationFactor = r.min, r.max, 2, 0.1
			b.Reset()
			rt = &retry{b: b}
			r.byID[f.Address] = rt
		}
		rt.attempts++
		rt.err, rt.step, rt.terminal = f.Error, f.Step, f.Terminal
		if f.Terminal {
			rt.digest, rt.fingerprint = migrationDigest(cfg, f.Address), p.Fingerprints[f.Address]
			rt.next = time.Time{}
		} else {
			rt.next = r.now().Add(rt.b.NextBackOff())
		}
	}
}

// hold is ApplyOptions.Hold: a retryable failure waits out its backoff; a
// terminal one waits until the migration's configuration or source VM
// moved, and is then forgotten.
func (r *retries) hold(cfg *schema.Config) func(*reconcile.Plan, *reconcile.Change) (string, bool) {
	return func(p *reconcile.Plan, c *reconcile.Change) (string, bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		rt := r.byID[c.Address]
		if rt == nil {
			return "", false
		}
		if rt.terminal {
			fp, seen := p.Fingerprints[c.Address]
			if migrationDigest(cfg, c.Address) != rt.digest || (seen && fp != rt.fingerprint) {
				delete(r.byID, c.Address)
				return "", false
			}
			return fmt.Sprintf("waiting for a change to its configuration or source VM after a terminal failure at %s: %s", rt.step, rt.err), true
		}
		if now := r.now(); now.Before(rt.next) {
			return fmt.Sprintf("retry %d after %s (in %s) after a failure at %s: %s",
				rt.attempts+1, rt.next.UTC().Format(time.RFC3339), rt.next.Sub(now).Round(time.Second), rt.step, rt.err), true
		}
		return "", false
	}
}

// due is the earliest time a held migration may run again (zero: none).
func (r *retries) due() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first time.Time
	for _, rt := range r.byID {
		if !rt.terminal && (first.IsZero() || rt.next.Before(first)) {
			first = rt.next
		}
	}
	return first
}

// forget drops migrations no longer in the configuration.
func (r *retries) forget(cfg *schema.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for a := range r.byID {
		if migrationDigest(cfg, a) == "" {
			delete(r.byID, a)
		}
	}
}

func (r *retries) status() []RetryStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RetryStatus, 0, len(r.byID))
	for a, rt := range r.byID {
		s := RetryStatus{Address: a, Step: rt.step, Error: rt.err, Attempts: rt.attempts, Terminal: rt.terminal}
		if !rt.terminal {
			t := rt.next
			s.Next = &t
		}
		out = append(out, s)
	}
	sortRetries(out)
	return out
}

func migrationDigest(cfg *schema.Config, addr string) string {
	for _, m := range cfg.Migrations {
		if m.Addr.String() == addr {
			return m.Digest
		}
	}
	return ""
}
