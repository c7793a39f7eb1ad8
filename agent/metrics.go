package agent

import (
	"context"
	"errors"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
)

// metrics are the agent's Prometheus metrics, in a registry of its own
// (served at /metrics). Counters and histograms are updated as passes
// run; the gauges of the campaign (migrations by phase, converter health
// and queues) are computed at each scrape from the agent's view, so they
// never keep a label that no longer applies.
type metrics struct {
	reg       *prometheus.Registry
	passes    *prometheus.HistogramVec
	lockWait  prometheus.Histogram
	exported  prometheus.Counter
	converted prometheus.Counter
	failures  *prometheus.CounterVec
	lastPass  prometheus.Gauge
}

// steps are the step kinds, so that every failure counter exists from
// the start (a rate over a series that appears late misses its first
// increment).
var steps = []reconcile.StepKind{reconcile.StepExport, reconcile.StepSubmit, reconcile.StepAwait,
	reconcile.StepDefine, reconcile.StepWithdraw, reconcile.StepPrune, reconcile.StepForget}

func newMetrics(a *Agent, version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		passes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hyperagent_pass_duration_seconds",
			Help:    "Duration of the agent's reconcile passes (load, observe, plan and, with auto_apply, apply), by outcome: ok, or failed when the pass could not run or finish (a single migration's failure does not fail the pass).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400},
		}, []string{"outcome"}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hyperagent_lock_wait_seconds",
			Help:    "Time each pass waited for the state lock another holder (apply, plan, state rm) had.",
			Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		exported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hyperagent_exported_bytes_total",
			Help: "Bytes the sources reported moved by exports (a transfer that starts over counts again).",
		}),
		converted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hyperagent_converted_bytes_total",
			Help: "Bytes of the converted disks recorded when their conversions ended.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hyperagent_step_failures_total",
			Help: "Steps that failed, by step (export, submit, await, define, withdraw, prune, forget); interruptions are not counted.",
		}, []string{"step"}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hyperagent_last_pass_timestamp_seconds",
			Help: "When the last pass ended, in seconds since the epoch.",
		}),
	}
	for _, s := range steps {
		m.failures.WithLabelValues(string(s))
	}
	for _, o := range []string{"ok", "failed"} {
		m.passes.WithLabelValues(o)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "hyperagent_build_info",
		Help:        "Always 1; its labels say which hyperagent build runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	m.reg.MustRegister(m.passes, m.lockWait, m.exported, m.converted, m.failures, m.lastPass, build,
		campaignCollector{a},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(a.notify.Collectors()...)
	return m
}

// passEnded records a pass: its duration and outcome, its wait for the
// lock, and the bytes of the conversions it collected.
func (m *metrics) passEnded(res *pass.Result, err error, converted int64) {
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	m.passes.WithLabelValues(outcome).Observe(res.Took.Seconds())
	var locked *reconcile.LockedError
	switch {
	case res.Lock.ID != "":
		m.lockWait.Observe(max(res.Lock.Since.Sub(res.Started), 0).Seconds())
	case errors.As(err, &locked):
		m.lockWait.Observe(res.Took.Seconds()) // waited it all, in vain
	}
	m.converted.Add(float64(converted))
	m.lastPass.SetToCurrentTime()
}

func (m *metrics) stepFailed(ctx context.Context, step reconcile.StepKind) {
	if ctx.Err() == nil && step != "" {
		m.failures.WithLabelValues(string(step)).Inc()
	}
}

func (m *metrics) progress(n int64) { m.exported.Add(float64(n)) }

// campaignCollector computes the campaign's gauges at each scrape.
type campaignCollector struct{ a *Agent }

var (
	migrationsDesc = prometheus.NewDesc("hyperagent_migrations",
		"Configured migrations by phase: as the last plan observed them, moved on by the steps done since.", []string{"phase"}, nil)
	converterUpDesc = prometheus.NewDesc("hyperagent_converter_up",
		"1 when a consumer (a worker with a fresh heartbeat, the hyper2kvm unit active) serves the converter's queue, 0 when none does; as of the last pass. Converters that cannot tell are left out.",
		[]string{"converter"}, nil)
	converterJobsDesc = prometheus.NewDesc("hyperagent_converter_jobs",
		"The campaign's converter jobs by state: queued (waiting for a consumer) or processing, as last observed.", []string{"converter", "state"}, nil)
)

// phases are every phase a configured migration can be in, so that each
// series exists (at 0) from the start.
var phases = []reconcile.Phase{reconcile.PhasePending, reconcile.PhaseExported, reconcile.PhaseQueued,
	reconcile.PhaseConverting, reconcile.PhaseConverted, reconcile.PhaseDefined, reconcile.PhaseFailed}

func (c campaignCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- migrationsDesc
	ch <- converterUpDesc
	ch <- converterJobsDesc
}

func (c campaignCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.a.live.phases()
	for _, ph := range phases {
		ch <- prometheus.MustNewConstMetric(migrationsDesc, prometheus.GaugeValue, float64(counts[ph]), string(ph))
	}
	for _, cs := range c.a.withQueues(c.a.converters()) {
		if cs.Known {
			up := 0.0
			if cs.Live {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(converterUpDesc, prometheus.GaugeValue, up, cs.Name)
		}
		ch <- prometheus.MustNewConstMetric(converterJobsDesc, prometheus.GaugeValue, float64(cs.Queued), cs.Name, "queued")
		ch <- prometheus.MustNewConstMetric(converterJobsDesc, prometheus.GaugeValue, float64(cs.Processing), cs.Name, "processing")
	}
}

// converters is the health the last pass saw.
func (a *Agent) converters() []ConverterStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ConverterStatus(nil), a.status.Converters...)
}

// afterPass records what a pass did for the status API and the metrics:
// what state says now (attempts, errors, the outputs collected), each
// converter's health, and the pass's figures.
func (a *Agent) afterPass(ctx context.Context, w *pass.Workspace, res *pass.Result, err error) {
	var converted int64
	if st, lerr := w.Store.Load(); lerr == nil {
		converted = a.live.record(st)
	} else {
		a.log.Warn("reading the state for the status failed", "error", lerr)
	}
	if ctx.Err() == nil {
		a.checkConverters(ctx, w.Plugins)
	}
	a.notify.Flush()
	a.metrics.passEnded(res, err, converted)
}

// progress is the pass's plugins.Progress.
func (a *Agent) progress(ev plugins.ProgressEvent) {
	a.progressed()
	a.metrics.progress(a.live.progress(ev))
}
