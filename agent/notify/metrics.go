package notify

import "github.com/prometheus/client_golang/prometheus"

// metrics count deliveries per webhook; the outbox's depth is computed at
// each scrape.
type metrics struct {
	delivered *prometheus.CounterVec
	failures  *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hyperagent_notifications_delivered_total",
			Help: "Notification events a webhook's receiver acknowledged (answered 2xx), by webhook.",
		}, []string{"webhook"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hyperagent_notification_failures_total",
			Help: "Attempts to deliver a notification that failed (no answer, or not 2xx), by webhook; each is retried with backoff.",
		}, []string{"webhook"}),
	}
}

// add makes a webhook's series exist from the start, at 0.
func (m *metrics) add(hook string) {
	m.delivered.WithLabelValues(hook)
	m.failures.WithLabelValues(hook)
}

func (m *metrics) remove(hook string) {
	m.delivered.DeleteLabelValues(hook)
	m.failures.DeleteLabelValues(hook)
}

var outboxDesc = prometheus.NewDesc("hyperagent_notification_outbox_events",
	"Notification events queued for a webhook and not yet acknowledged, by webhook.", []string{"webhook"}, nil)

// Collectors are the notifier's metrics, for the agent's registry.
func (n *Notifier) Collectors() []prometheus.Collector {
	return []prometheus.Collector{n.m.delivered, n.m.failures, outboxCollector{n}}
}

type outboxCollector struct{ n *Notifier }

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- outboxDesc }

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	for name, d := range c.n.depths() {
		ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(d), name)
	}
}

// depths is each configured webhook's queue length.
func (n *Notifier) depths() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]int, len(n.senders))
	for name, s := range n.senders {
		out[name] = s.depth()
	}
	return out
}
