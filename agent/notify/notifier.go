package notify

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// Options configure a Notifier.
type Options struct {
	Log hclog.Logger
	// Redact keeps secrets out of what is logged (the process's
	// Redactor, which holds the webhooks' secrets and sensitive URLs).
	Redact *reconcile.Redactor
	// Version is the build's, sent as the User-Agent.
	Version string
	// RetryMin and RetryMax bound the wait between attempts (default
	// 1 s and 5 min); Timeout bounds one attempt (default 10 s).
	RetryMin, RetryMax, Timeout time.Duration
	Now                         func() time.Time
}

// Notifier queues the notifications of one agent and delivers them. State
// and Planned find transitions; Configure says where the outbox is and
// which webhooks there are; Start runs the senders. Its methods may be
// called from any goroutine.
type Notifier struct {
	o      Options
	log    hclog.Logger
	client *http.Client
	m      *metrics

	mu      sync.Mutex
	dir     string // the notify directory: ledger.json, outbox/<webhook>/
	hooks   []schema.Webhook
	led     *ledger // nil until read
	senders map[string]*sender
	ctx     context.Context // set by Start
}

// New returns a Notifier with no webhook.
func New(o Options) *Notifier {
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(5*time.Minute, o.RetryMin)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &Notifier{o: o, log: o.Log, senders: map[string]*sender{}, m: newMetrics(),
		client: &http.Client{Transport: tr,
			// A redirect would carry the signed event elsewhere, and a
			// 303 would turn it into a GET: it is an answer like any
			// other that is not 2xx.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (n *Notifier) redact(s string) string { return n.o.Redact.String(s) }

func (n *Notifier) ledgerPath() string { return filepath.Join(n.dir, "ledger.json") }

func (n *Notifier) outboxDir(hook string) string { return filepath.Join(n.dir, "outbox", hook) }

// Configure sets the notify directory (beside the state) and the webhooks,
// as a configuration that loaded says. A webhook that stays keeps its
// queue; one removed stops, and its undelivered events stay in its
// outbox until it is configured again. With no webhook, nothing is
// tracked, and the ledger is dropped: notifying starts afresh when a
// webhook comes back, rather than telling the history since.
func (n *Notifier) Configure(dir string, hooks []*schema.Webhook) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if dir != n.dir {
		for name, s := range n.senders {
			s.stop()
			delete(n.senders, name)
		}
		n.dir, n.led = dir, nil
	}
	if len(hooks) == 0 && len(n.hooks) > 0 {
		if err := os.Remove(n.ledgerPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			n.log.Warn("the notifications ledger could not be removed", "error", n.redact(err.Error()))
		}
		n.led = nil
	}
	n.hooks = n.hooks[:0]
	keep := map[string]bool{}
	for _, h := range hooks {
		n.hooks = append(n.hooks, *h)
		keep[h.Name] = true
		if s := n.senders[h.Name]; s != nil {
			s.settings(*h)
			continue
		}
		s := newSender(n, n.outboxDir(h.Name), *h)
		n.senders[h.Name] = s
		n.m.add(h.Name)
		if n.ctx != nil {
			s.start(n.ctx)
		}
	}
	for name, s := range n.senders {
		if !keep[name] {
			s.stop()
			delete(n.senders, name)
			n.m.remove(name)
		}
	}
}

// Start runs the senders until ctx ends; Wait waits for them to stop.
func (n *Notifier) Start(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ctx = ctx
	for _, s := range n.senders {
		s.start(ctx)
	}
}

// Wait waits for the senders to stop (after Start's ctx ended) and
// writes the ledger if it moved.
func (n *Notifier) Wait() {
	n.mu.Lock()
	senders := make([]*sender, 0, len(n.senders))
	for _, s := range n.senders {
		senders = append(senders, s)
	}
	n.mu.Unlock()
	for _, s := range senders {
		if s.done != nil {
			<-s.done
		}
	}
	n.Flush()
}

// State is the state store's observer (reconcile.Store.Observe): it
// queues the transitions st records that were not queued yet.
func (n *Notifier) State(st *reconcile.State) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ready() {
		return
	}
	n.queue(n.led.fromState(st))
}

// Record queues the transitions of one record a store shared by several
// processes wrote alone (reconcile.Store.ObserveRecords), as State does
// for a whole state: so that on PostgreSQL a migration defined mid-pass
// is told then, not when the pass ends and the agent reads the state.
func (n *Notifier) Record(campaign, addr string, ms *reconcile.MigrationState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ready() {
		return
	}
	n.queue(n.led.fromRecord(campaign, addr, ms))
}

// Planned queues the conditions a plan observed (failed or stalled jobs,
// drift) that were not queued yet.
func (n *Notifier) Planned(p *reconcile.Plan) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ready() {
		return
	}
	n.queue(n.led.fromPlan(p, n.o.Now().UTC()))
}

// Flush writes the ledger if it moved without a new event (a condition
// that cleared): the agent calls it after each pass.
func (n *Notifier) Flush() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.led != nil && n.led.dirty && n.dir != "" && len(n.hooks) > 0 {
		if err := n.led.write(n.ledgerPath()); err != nil {
			n.log.Error("the notifications ledger could not be written", "error", n.redact(err.Error()))
		}
	}
}

// ready reads the ledger on first use; false without webhooks.
func (n *Notifier) ready() bool {
	if len(n.hooks) == 0 || n.dir == "" {
		return false
	}
	if n.led == nil {
		l, err := readLedger(n.ledgerPath())
		if err != nil {
			n.log.Error("notifications are held: the ledger cannot be read", "error", n.redact(err.Error()))
			return false
		}
		n.led = l
	}
	return true
}

// queue puts each new transition's event in the outbox of every webhook
// that wants it, then moves the ledger on for those fully queued, and
// writes it (also when it started afresh, so that a crash does not make
// it start afresh again, past a transition state recorded meanwhile). A transition that could not be queued stays new: the next
// state or plan seen tries again.
func (n *Notifier) queue(found []pending) {
	sort.Slice(found, func(i, j int) bool { return found[i].ev.OccurredAt.Before(found[j].ev.OccurredAt) })
	now := n.o.Now().UTC()
	queued := 0
	for _, p := range found {
		ev := p.ev
		ev.FormatVersion, ev.QueuedAt = FormatVersion, now
		ev.Error, ev.Detail = n.redact(ev.Error), n.redact(ev.Detail)
		var err error
		for _, h := range n.hooks {
			if h.Wants(ev.Type) {
				err = errors.Join(err, n.senders[h.Name].put(&ev))
			}
		}
		if err != nil {
			n.log.Error("a notification could not be queued; it is tried again at the next pass", "type", ev.Type,
				"address", ev.Address, "error", n.redact(err.Error()))
			continue
		}
		p.commit()
		queued++
		n.log.Info("notification queued", "id", ev.ID, "type", ev.Type, "address", ev.Address)
	}
	if queued > 0 || n.led.urgent {
		if err := n.led.write(n.ledgerPath()); err != nil {
			n.log.Error("the notifications ledger could not be written; transitions may be queued again", "error", n.redact(err.Error()))
		}
	}
}
