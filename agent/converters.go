package agent

import (
	"context"
	"sort"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

// ConverterStatus is the health of one converter instance: whether a
// consumer serves its queue (for hyper2kvm: a worker's fresh heartbeat,
// the daemon unit's state over D-Bus), and its queue as last observed.
type ConverterStatus struct {
	Name string `json:"name"`
	// Known is false for a converter that cannot tell who serves its
	// queue (not a plugins.JobChecker); Live is then false too.
	Known bool `json:"known"`
	Live  bool `json:"live"`
	// Detail names what was seen: "worker on host1 (pid 42), heartbeat
	// 3s ago; hyper2kvm@x.service is active (running)".
	Detail    string    `json:"detail"`
	CheckedAt time.Time `json:"checked_at"`
	// Queued and Processing count the campaign's jobs waiting for a
	// consumer and being converted.
	Queued     int `json:"queued"`
	Processing int `json:"processing"`
}

// converterCheckTimeout bounds one converter's answer (a D-Bus call, a
// directory listing).
const converterCheckTimeout = 10 * time.Second

// checkConverters asks every converter who serves its queue, with no
// jobs to check: the same answer a plan's pre-flight gets, kept for the
// status and the metrics. It runs after every pass.
func (a *Agent) checkConverters(ctx context.Context, set *plugins.Set) {
	names := make([]string, 0, len(set.Converters))
	for n := range set.Converters {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]ConverterStatus, 0, len(names))
	for _, n := range names {
		cs := ConverterStatus{Name: n, CheckedAt: time.Now().UTC(),
			Detail: "this converter does not tell who serves its queue"}
		if jc, ok := set.Converters[n].(plugins.JobChecker); ok {
			cctx, cancel := context.WithTimeout(ctx, converterCheckTimeout)
			resp, err := jc.CheckJobs(cctx, plugins.CheckJobsRequest{})
			cancel()
			if err != nil {
				cs.Detail = "checking its consumers failed: " + err.Error()
			} else {
				cs.Known, cs.Live, cs.Detail = true, resp.Consumer.Live, resp.Consumer.Detail
			}
		}
		cs.Detail = a.o.Redact.String(cs.Detail)
		out = append(out, cs)
	}
	a.setStatus(func(s *Status) { s.Converters = out })
}

// withQueues fills in the queues as the campaign stands now.
func (a *Agent) withQueues(cs []ConverterStatus) []ConverterStatus {
	q := a.live.queues()
	out := make([]ConverterStatus, len(cs))
	for i, c := range cs {
		c.Queued, c.Processing = q[c.Name][0], q[c.Name][1]
		out[i] = c
	}
	return out
}
