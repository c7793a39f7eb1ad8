package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

const mib = 1 << 20

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 1, 15, 29, 3, 0, time.UTC)} }

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// feed reports an item of total bytes in steps of step bytes, one every
// tick of the clock.
func feed(report func(plugins.ProgressEvent), c *fakeClock, tick time.Duration, addr, item string, total, step int64) {
	for done := int64(0); done < total; done += step {
		report(plugins.ProgressEvent{Address: addr, Item: item, Done: done, Total: total})
		c.add(tick)
	}
	report(plugins.ProgressEvent{Address: addr, Item: item, Done: total, Total: total})
}

func start(addr string) reconcile.Event {
	return reconcile.Event{Address: addr, Step: reconcile.StepExport, Status: "start"}
}

func done(addr string) reconcile.Event {
	return reconcile.Event{Address: addr, Step: reconcile.StepExport, Status: "done"}
}

// The tracker says a line is due at an item's first report, at its end,
// and in between at a further 10% mark once 10 s passed; the rate is over
// the reports of the last 30 s.
func TestProgressTrackerDue(t *testing.T) {
	c := newFakeClock()
	tr := newProgressTracker(c.now)
	tr.started("migration.a", reconcile.StepExport)
	var due []int64
	var last progressSnapshot
	// 100 MiB at 1 MiB/s: a report a second.
	feed(func(ev plugins.ProgressEvent) {
		s, ok := tr.report(ev)
		if ok {
			due = append(due, ev.Done/mib)
		}
		last = s
	}, c, time.Second, "migration.a", "a.vmdk", 100*mib, mib)
	want := []int64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	if diff := cmp.Diff(want, due); diff != "" {
		t.Errorf("lines at MiB (-want +got):\n%s", diff)
	}
	if !last.Final || last.Rate != mib || last.Elapsed != 100*time.Second {
		t.Errorf("last %+v", last)
	}

	// Fast: 10% every second; lines come at most every 10 s.
	due = nil
	feed(func(ev plugins.ProgressEvent) {
		if _, ok := tr.report(ev); ok {
			due = append(due, ev.Done/mib)
		}
	}, c, time.Second, "migration.a", "b.vmdk", 100*mib, 10*mib)
	if diff := cmp.Diff([]int64{0, 100}, due); diff != "" {
		t.Errorf("fast item (-want +got):\n%s", diff)
	}

	// Unknown total: every 10 s.
	due = nil
	for i := range int64(25) {
		if _, ok := tr.report(plugins.ProgressEvent{Address: "migration.a", Item: "c", Done: i * mib, Total: -1}); ok {
			due = append(due, i)
		}
		c.add(time.Second)
	}
	if diff := cmp.Diff([]int64{0, 10, 20}, due); diff != "" {
		t.Errorf("unknown total (-want +got):\n%s", diff)
	}
	s, _ := tr.snapshot("migration.a")
	if s.ETA != nil || s.percent() != nil || s.Rate != mib {
		t.Errorf("unknown total: %+v", s)
	}
	if d := tr.ended("migration.a"); d != 135*time.Second {
		t.Errorf("the step ran %s", d)
	}
	if _, ok := tr.snapshot("migration.a"); ok {
		t.Error("an ended step is still tracked")
	}
}

// Off a terminal: timestamped lines, step lines and progress lines at
// the points the tracker says.
func TestLineDisplay(t *testing.T) {
	c := newFakeClock()
	var out bytes.Buffer
	d := newLineDisplay(&out, c.now)
	d.event(start("migration.db"))
	feed(d.progress, c, 5*time.Second, "migration.db", "disk-0.vmdk", 100*mib, 25*mib)
	d.event(done("migration.db"))
	d.event(reconcile.Event{Address: "migration.db", Step: reconcile.StepSubmit, Status: "failed", Err: errString("queue full")})
	d.close()
	want := []string{
		"2026-12-01T15:29:03Z migration.db: export start",
		"2026-12-01T15:29:03Z migration.db: export disk-0.vmdk 0% (0 B of 100.0 MiB)",
		"2026-12-01T15:29:13Z migration.db: export disk-0.vmdk 50% (50.0 MiB of 100.0 MiB), 5.0 MiB/s, about 10s left",
		"2026-12-01T15:29:23Z migration.db: export disk-0.vmdk 100% (100.0 MiB of 100.0 MiB) in 20s",
		"2026-12-01T15:29:23Z migration.db: export done",
		"2026-12-01T15:29:23Z migration.db: submit failed: queue full",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(out.String()), "\n")); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Error("escape sequences off a terminal")
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// syncBuffer is a bytes.Buffer mpb's goroutine writes while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.b.String()
	s.b.Reset()
	return x
}

// erase is how mpb takes back the previous frame: cursor up N lines,
// erase to the end of the screen.
var erase = regexp.MustCompile(`\x1b\[([0-9]+)A\x1b\[J`)

// screen is what a terminal shows after out: lines, each erase taking
// back the last N.
func screen(t *testing.T, out string) []string {
	var lines []string
	add := func(s string) {
		if s == "" {
			return
		}
		if !strings.HasSuffix(s, "\n") {
			t.Fatalf("output that does not end a line: %q", s)
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(s, "\n"), "\n")...)
	}
	at := 0
	for _, m := range erase.FindAllStringSubmatchIndex(out, -1) {
		add(out[at:m[0]])
		n, _ := strconv.Atoi(out[m[2]:m[3]])
		if n > len(lines) {
			t.Fatalf("an erase of %d lines with %d on screen", n, len(lines))
		}
		lines = lines[:len(lines)-n]
		at = m[1]
	}
	add(out[at:])
	return lines
}

// On a terminal, mpb draws one line per running migration: its name,
// step and item, a bar, the percentage, rate and ETA (or the time a step
// without bytes has run). Step lines scroll above; a finished item leaves
// a line; close erases the migrations' lines.
func TestTTYDisplay(t *testing.T) {
	c := newFakeClock()
	var out syncBuffer
	refresh := make(chan any)
	d := newTTYDisplay(&out, func() (int, int) { return 100, 30 }, refresh, c.now)
	// draw makes mpb draw and returns what it wrote, once it is idle: the
	// manual refresh channel is unbuffered, so the third send is taken
	// only after the first frame is drawn, and a write through the
	// container is served only after the frame being drawn.
	var transcript strings.Builder
	draw := func() (all, last string) {
		for range 3 {
			refresh <- nil
		}
		d.mu.Lock()
		_, _ = d.p.Write(nil)
		d.mu.Unlock()
		all = out.take()
		transcript.WriteString(all)
		frames := erase.Split(all, -1)
		return all, frames[len(frames)-1]
	}
	d.event(start(`migration.web["a"]`))
	d.event(reconcile.Event{Address: "migration.db", Step: reconcile.StepAwait, Status: "start"})
	for i := int64(0); i <= 4; i++ {
		d.progress(plugins.ProgressEvent{Address: `migration.web["a"]`, Item: "disk-0.vmdk", Done: i * 10 * mib, Total: 100 * mib})
		c.add(time.Second)
	}
	all, last := draw()
	if !strings.HasPrefix(all, "migration.web[\"a\"]: export start\nmigration.db: await start\n") {
		t.Errorf("the step lines do not come first:\n%s", all)
	}
	for _, re := range []string{
		`^migration\.web\["a"\] export disk-0\.vmdk +\[=+>-+\] +40% 10\.0 MiB/s ETA 6s\n`,
		`\nmigration\.db +await +5s\n$`,
	} {
		if !regexp.MustCompile(re).MatchString(last) {
			t.Errorf("the frame does not match %s:\n%s", re, last)
		}
	}
	for _, l := range strings.Split(last, "\n") {
		if len([]rune(l)) > 100 {
			t.Errorf("a line wider than the terminal: %q", l)
		}
	}

	d.progress(plugins.ProgressEvent{Address: `migration.web["a"]`, Item: "disk-0.vmdk", Done: 100 * mib, Total: 100 * mib})
	d.event(done(`migration.web["a"]`))
	c.add(time.Second)
	all, last = draw()
	if !strings.Contains(erase.ReplaceAllString(all, ""), "migration.web[\"a\"]: export disk-0.vmdk 100% (100.0 MiB of 100.0 MiB) in 5s\nmigration.web[\"a\"]: export done\n") {
		t.Errorf("the finished item and step lines are missing:\n%s", all)
	}
	if !regexp.MustCompile(`^migration\.db +await +6s\n$`).MatchString(last) {
		t.Errorf("the last frame is not the one running migration:\n%q", last)
	}

	d.event(reconcile.Event{Address: "migration.db", Step: reconcile.StepAwait, Status: "done"})
	d.close()
	d.close() // twice is harmless
	// In the end the terminal shows the step lines and the finished
	// item's, and no migration's line.
	transcript.WriteString(out.take())
	want := []string{
		`migration.web["a"]: export start`,
		`migration.db: await start`,
		`migration.web["a"]: export disk-0.vmdk 100% (100.0 MiB of 100.0 MiB) in 5s`,
		`migration.web["a"]: export done`,
		`migration.db: await done`,
	}
	if diff := cmp.Diff(want, screen(t, transcript.String())); diff != "" {
		t.Errorf("the screen after close (-want +got):\n%s\n%q", diff, transcript.String())
	}
}

// With -json the steps are apply_start, apply_complete and apply_errored
// lines, progress is apply_progress at the tracker's points, and the
// result ends with a diagnostic per failure (placed when a plugin said
// where), the change_summary and the apply_result; every line is valid
// against docs/schema/ui.json.
func TestJSONApplyView(t *testing.T) {
	c := newFakeClock()
	var out bytes.Buffer
	v := &jsonApplyView{jsonUI: newJSONUI(&out), t: newProgressTracker(c.now)}
	v.jsonUI.now = c.now
	v.event(start("migration.db"))
	feed(v.progress, c, 5*time.Second, "migration.db", "disk-0.vmdk", 100*mib, 25*mib)
	v.event(done("migration.db"))
	v.event(reconcile.Event{Address: "migration.web", Step: reconcile.StepDefine, Status: "start"})
	c.add(time.Second)
	v.event(reconcile.Event{Address: "migration.web", Step: reconcile.StepDefine, Status: "failed", Err: errString("uri refused")})
	v.close()
	v.result(&reconcile.Result{Migrated: []string{"migration.db"}, Failed: []reconcile.Failure{{Address: "migration.web",
		Step: reconcile.StepDefine, Error: "uri refused", Terminal: true,
		Config: &reconcile.ConfigPlace{Plugin: "target.libvirt.kvm", Attr: "uri", File: "main.hcl", Line: 12, Column: 3}}}})
	ls := uiLines(t, out.String())
	var types []string
	for _, l := range ls {
		types = append(types, l.Type)
	}
	want := []string{"version", "apply_start", "apply_progress", "apply_progress", "apply_progress", "apply_complete",
		"apply_start", "apply_errored", "diagnostic", "change_summary", "apply_result"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("line types (-want +got):\n%s", diff)
	}
	mid := ls[3].Hook
	if mid["percent"] != 50.0 || mid["rate_bytes_per_second"] != float64(5*mib) || mid["eta_seconds"] != 10.0 || mid["item"] != "disk-0.vmdk" {
		t.Errorf("apply_progress at 50%%: %v", mid)
	}
	if h := ls[5].Hook; h["elapsed_seconds"] != 20.0 {
		t.Errorf("apply_complete: %v", h)
	}
	if h := ls[7].Hook; h["error"] != "uri refused" || ls[7].Level != "error" {
		t.Errorf("apply_errored: %v", ls[7])
	}
	d := ls[8].Diagnostic
	if d == nil || d.Address != "migration.web" || d.Range == nil || d.Range.Filename != "main.hcl" || d.Range.Start.Line != 12 {
		t.Errorf("the failure's diagnostic: %+v", d)
	}
	if ls[9].Changes["operation"] != "apply" || ls[9].Changes["failed"] != 1.0 || ls[9].Message != resultLine(&reconcile.Result{Migrated: []string{""}, Failed: []reconcile.Failure{{}}}) {
		t.Errorf("change_summary: %+v", ls[9])
	}
	if ls[1].Timestamp != "2026-12-01T15:29:03Z" || ls[0].Module != "hyperagent.ui" {
		t.Errorf("header: %+v", ls[0])
	}
}
