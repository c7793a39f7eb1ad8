package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/reconcile"
)

// progressTracker follows apply's running migrations for the three ways
// apply shows them (view_progress_tty.go on a terminal,
// view_progress_lines.go elsewhere, apply_progress lines with -json): the
// step each one runs, the item its plugin moves (a disk, an OVA's file),
// its bytes, rate and ETA, and when the next progress line is due. It is
// safe for concurrent use: steps report from many goroutines, and the
// terminal's decorators read it while drawing.
type progressTracker struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*trackedMigration
}

type trackedMigration struct {
	step      reconcile.StepKind
	stepSince time.Time

	item       string
	itemSince  time.Time
	done       int64
	total      int64              // -1 when unknown
	rate       plugins.Throughput // the item's reports in the last plugins.RateWindow
	lastLine   time.Time
	lastDecile int
}

const (
	// lineEvery is the least time between two progress lines of one
	// migration, besides an item's first and last.
	lineEvery = 10 * time.Second
)

// progressSnapshot is how far one migration's item is.
type progressSnapshot struct {
	Address string
	Step    reconcile.StepKind
	Item    string
	Done    int64
	Total   int64 // -1 when unknown
	// Rate is in bytes per second over the last plugins.RateWindow; 0 until two
	// reports came.
	Rate float64
	// ETA is set when the total and the rate are known.
	ETA     *time.Duration
	Elapsed time.Duration // since the item's first report
	// First and Final mark the item's first report and its end.
	First, Final bool
}

func newProgressTracker(now func() time.Time) *progressTracker {
	return &progressTracker{now: now, m: map[string]*trackedMigration{}}
}

// started records a step starting.
func (t *progressTracker) started(addr string, step reconcile.StepKind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[addr] = &trackedMigration{step: step, stepSince: t.now(), total: -1, lastDecile: -1}
}

// ended forgets the migration's step and says how long it ran.
func (t *progressTracker) ended(addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.m[addr]
	delete(t.m, addr)
	if m == nil {
		return 0
	}
	return t.now().Sub(m.stepSince)
}

// report takes a plugin's report. due says a progress line is due (off a
// terminal and with -json): at the item's first report and at its end;
// in between when a further 10% mark was reached and lineEvery passed
// since the migration's last line (an item of unknown size: every
// lineEvery).
func (t *progressTracker) report(ev plugins.ProgressEvent) (s progressSnapshot, due bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	m := t.m[ev.Address]
	if m == nil { // a report outside a step's start and end
		m = &trackedMigration{stepSince: now, total: -1, lastDecile: -1}
		t.m[ev.Address] = m
	}
	first := m.item != ev.Item || m.itemSince.IsZero()
	if first {
		m.item, m.itemSince, m.lastDecile = ev.Item, now, -1
		m.rate.Reset()
	}
	m.done, m.total = ev.Done, ev.Total
	m.rate.Add(now, ev.Done)
	s = m.snapshot(ev.Address, now)
	s.First = first
	d := decile(ev.Done, ev.Total)
	switch {
	case first, s.Final:
		due = true
	case ev.Total < 0:
		due = now.Sub(m.lastLine) >= lineEvery
	default:
		due = d > m.lastDecile && now.Sub(m.lastLine) >= lineEvery
	}
	if due {
		m.lastLine, m.lastDecile = now, d
	}
	return s, due
}

// snapshot is where the migration's step is now (for the terminal's
// line); ok is false when it runs no step.
func (t *progressTracker) snapshot(addr string) (progressSnapshot, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.m[addr]
	if m == nil {
		return progressSnapshot{}, false
	}
	return m.snapshot(addr, t.now()), true
}

func (m *trackedMigration) snapshot(addr string, now time.Time) progressSnapshot {
	s := progressSnapshot{Address: addr, Step: m.step, Item: m.item, Done: m.done, Total: m.total,
		Final: m.item != "" && m.total >= 0 && m.done >= m.total}
	if m.item == "" {
		s.Elapsed = now.Sub(m.stepSince)
		return s
	}
	s.Elapsed = now.Sub(m.itemSince)
	s.Rate = m.rate.Rate()
	s.ETA = plugins.ETA(s.Done, s.Total, s.Rate)
	return s
}

// percent is the item's share done, or nil when its total is unknown.
func (s progressSnapshot) percent() *float64 {
	if s.Total < 0 {
		return nil
	}
	p := 100.0
	if s.Total > 0 {
		p = min(float64(s.Done)*100/float64(s.Total), 100)
	}
	return &p
}

// decile is the 10% mark reached, or -1 when the total is unknown.
func decile(done, total int64) int {
	if total <= 0 {
		return -1
	}
	return int(min(done*10/total, 10))
}

// amount renders "40% (410 MiB of 1.0 GiB)", or just the bytes when the
// total is unknown.
func amount(done, total int64) string {
	if total < 0 {
		return fsutil.FormatBytes(done)
	}
	pct := int64(100)
	if total > 0 {
		pct = done * 100 / total
	}
	return fmt.Sprintf("%d%% (%s of %s)", pct, fsutil.FormatBytes(done), fsutil.FormatBytes(total))
}

// rateText renders a rate: "102.3 MiB/s".
func rateText(bytesPerSecond float64) string {
	return fsutil.FormatBytes(int64(bytesPerSecond)) + "/s"
}

// durationText renders a duration for people, to the second: "1m5s".
func durationText(d time.Duration) string {
	return max(d, 0).Round(time.Second).String()
}

// progressText is one item's progress for people, without the address:
// "export disk-0.vmdk 40% (410.0 MiB of 1.0 GiB), 102.3 MiB/s, about 6s
// left", and at the end "… 100% (1.0 GiB of 1.0 GiB) in 10s".
func progressText(s progressSnapshot) string {
	line := fmt.Sprintf("%s %s %s", s.Step, s.Item, amount(s.Done, s.Total))
	if s.Step == "" {
		line = fmt.Sprintf("%s %s", s.Item, amount(s.Done, s.Total))
	}
	if s.Final {
		return line + " in " + durationText(s.Elapsed)
	}
	if s.Rate > 0 {
		line += ", " + rateText(s.Rate)
	}
	if s.ETA != nil {
		line += ", about " + durationText(*s.ETA) + " left"
	}
	return line
}

// stepLine is apply's line for a step event: "migration.db: export
// start", with the error of a failed step.
func stepLine(ev reconcile.Event) string {
	line := fmt.Sprintf("%s: %s %s", ev.Address, ev.Step, ev.Status)
	if ev.Status == "failed" && ev.Err != nil {
		line += ": " + ev.Err.Error()
	}
	return line
}

// formatPercent renders a share done for a terminal line: " 41%".
func formatPercent(p float64) string {
	return fmt.Sprintf("%3d%%", int(p))
}
