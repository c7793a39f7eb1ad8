package main

import (
	"io"
	"sync"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/reconcile"
)

// ttyDisplay shows apply's steps on a terminal: the step lines scroll
// above, and below them each running migration has one line, redrawn in
// place by mpb, with its name, its step and the item the step moves, a
// bar, the percentage, the rate and the ETA (or, for a step that reports
// no bytes, the time it has run):
//
//	migration.web["a"]  export disk-0.vmdk [=====>-------]  41% 102.3 MiB/s ETA 6s
//	migration.db        await              [-------------]  3m12s
//
// The display starts with the first step, so that nothing is drawn over
// the plan or the approval prompt, and close erases it.
type ttyDisplay struct {
	out     io.Writer
	size    func() (width, height int)
	refresh <-chan any // nil: mpb redraws every ttyRefresh by itself
	t       *progressTracker

	mu   sync.Mutex
	p    *mpb.Progress
	cw   *ttyWriter
	bars map[string]*mpb.Bar
	prio map[string]int // a migration keeps its line's place between steps
}

// ttyRefresh is how often the lines are redrawn.
const ttyRefresh = 150 * time.Millisecond

func newTTYDisplay(out io.Writer, size func() (int, int), refresh <-chan any, now func() time.Time) *ttyDisplay {
	return &ttyDisplay{out: out, size: size, refresh: refresh, t: newProgressTracker(now),
		bars: map[string]*mpb.Bar{}, prio: map[string]int{}}
}

// ttyWriter is mpb's console writer over hyperagent's stdout, which is
// wrapped (by the redactor) so that mpb cannot see the terminal itself.
type ttyWriter struct {
	*cupwriter.Writer
	size func() (int, int)
}

func (w ttyWriter) IsTerminal() bool { return true }

func (w ttyWriter) GetTermSize() (int, int, error) {
	width, height := w.size()
	return width, height, nil
}

// start makes the container on first use. Callers hold mu.
func (d *ttyDisplay) start() {
	if d.p != nil {
		return
	}
	d.cw = &ttyWriter{Writer: cupwriter.New(d.out, true), size: d.size}
	opts := []mpb.ContainerOption{mpb.WithConsoleWriter(d.cw), mpb.WithRefreshRate(ttyRefresh)}
	if d.refresh != nil {
		opts = append(opts, mpb.WithManualRefresh(d.refresh))
	}
	d.p = mpb.New(opts...)
}

func (d *ttyDisplay) event(ev reconcile.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.start()
	d.println(stepLine(ev))
	if b := d.bars[ev.Address]; b != nil {
		b.Abort(true)
		delete(d.bars, ev.Address)
	}
	if ev.Status != "start" {
		d.t.ended(ev.Address)
		return
	}
	d.t.started(ev.Address, ev.Step)
	d.bars[ev.Address] = d.newBar(ev.Address)
}

func (d *ttyDisplay) progress(ev plugins.ProgressEvent) {
	s, _ := d.t.report(ev)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.start()
	b := d.bars[ev.Address]
	if b == nil { // progress outside a step: show it all the same
		b = d.newBar(ev.Address)
		d.bars[ev.Address] = b
	}
	if s.Total >= 0 {
		b.SetTotal(s.Total, false)
	}
	b.SetCurrent(s.Done)
	if s.Final {
		// A finished item leaves one line behind.
		d.println(ev.Address + ": " + progressText(s))
	}
}

// println prints a line above the migrations' lines (at the next
// redraw). Callers hold mu.
func (d *ttyDisplay) println(line string) {
	_, _ = d.p.Write([]byte(line + "\n"))
}

// newBar is a migration's line. Its decorators read the tracker when
// mpb draws. Callers hold mu.
func (d *ttyDisplay) newBar(addr string) *mpb.Bar {
	prio, ok := d.prio[addr]
	if !ok {
		prio = len(d.prio)
		d.prio[addr] = prio
	}
	return d.p.New(0, mpb.BarStyle(),
		mpb.BarPriority(prio),
		// No bar until the step reports bytes: an empty one would read 0%.
		mpb.BarFillerMiddleware(func(base mpb.BarFiller) mpb.BarFiller {
			return mpb.BarFillerFunc(func(w io.Writer, st decor.Statistics) error {
				if s, ok := d.t.snapshot(addr); !ok || s.Item == "" {
					return nil
				}
				return base.Fill(w, st)
			})
		}),
		mpb.PrependDecorators(
			decor.Name(addr, decor.WC{C: decor.DSyncWidthR | decor.DextraSpace}),
			decor.Any(func(decor.Statistics) string { return d.what(addr) }, decor.WC{C: decor.DSyncWidthR | decor.DextraSpace}),
		),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return d.figures(addr) }, decor.WC{C: decor.DextraSpace})),
	)
}

// what is the step and its item: "export disk-0.vmdk".
func (d *ttyDisplay) what(addr string) string {
	s, ok := d.t.snapshot(addr)
	switch {
	case !ok:
		return ""
	case s.Item == "":
		return string(s.Step)
	}
	return string(s.Step) + " " + s.Item
}

// figures are the percentage, rate and ETA of the item moving, or the
// time the step has run when it reports no bytes: "41% 102.3 MiB/s ETA
// 6s", "3m12s".
func (d *ttyDisplay) figures(addr string) string {
	s, ok := d.t.snapshot(addr)
	switch {
	case !ok:
		return ""
	case s.Item == "":
		return durationText(s.Elapsed)
	}
	out := fsutil.FormatBytes(s.Done)
	if p := s.percent(); p != nil {
		out = formatPercent(*p)
	}
	if s.Rate > 0 {
		out += " " + rateText(s.Rate)
	}
	if s.ETA != nil {
		out += " ETA " + durationText(*s.ETA)
	}
	return out
}

// close erases the migrations' lines and prints what is still pending,
// so that the summary follows on a clean line.
func (d *ttyDisplay) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p == nil {
		return
	}
	for a, b := range d.bars {
		b.Abort(true)
		delete(d.bars, a)
	}
	d.p.Shutdown()
	// The container is stopped: what it had not drawn yet (lines printed
	// since the last redraw) is written now, erasing the last frame.
	_ = d.cw.Flush(0)
	d.p = nil
}
