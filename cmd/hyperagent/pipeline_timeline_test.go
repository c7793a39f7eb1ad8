package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// timeline records when each step of an apply started and ended (from
// apply -json's step events, stamped as they are written), when the
// worker converted each job (its Trace hook) and when each job landed,
// done, in the workflow directory (inotify), so that a benchmark can say
// where the apply lost time against its stages.
type timeline struct {
	mu    sync.Mutex
	t0    time.Time
	marks []mark
	buf   []byte // a partial line of apply's output
}

// mark is one thing that happened, at an offset from t0.
type mark struct {
	at     time.Duration
	key    string // migration address, or job id for the worker's marks
	step   string // export, submit, await, define; convert for the worker; job (landed)
	status string // start, done, failed, waiting; start, end for convert
}

func newTimeline() *timeline { return &timeline{t0: time.Now()} }

func (tl *timeline) add(key, step, status string, at time.Time) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.marks = append(tl.marks, mark{at: at.Sub(tl.t0), key: key, step: step, status: status})
}

// Write takes apply -json's output: each step event is marked when its
// line arrives.
func (tl *timeline) Write(p []byte) (int, error) {
	now := time.Now()
	tl.mu.Lock()
	tl.buf = append(tl.buf, p...)
	var lines [][]byte
	for {
		i := bytes.IndexByte(tl.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, append([]byte(nil), tl.buf[:i]...))
		tl.buf = tl.buf[i+1:]
	}
	tl.mu.Unlock()
	for _, l := range lines {
		var ev struct {
			Type string    `json:"type"`
			Hook applyHook `json:"hook"`
		}
		if json.Unmarshal(l, &ev) != nil {
			continue
		}
		status := map[string]string{uiApplyStart: "start", uiApplyComplete: "done", uiApplyErrored: "failed"}[ev.Type]
		if status != "" {
			tl.add(ev.Hook.Address, string(ev.Hook.Step), status, now)
		}
	}
	return len(p), nil
}

// trace is the worker's Trace hook.
func (tl *timeline) trace(event, jobID string) { tl.add(jobID, "convert", event, time.Now()) }

// watchLandings marks each job as it lands in processed/: the moment its
// manifest and its success sidecar are both there under their final
// names, whichever came last (hyperagent's worker files the sidecar
// first, the hyper2kvm daemon the manifest), as inotify tells this
// process. Today's date folder is made beforehand so that no landing
// precedes its watch; stop ends the watch and fails if a job landed in
// another folder (a run across midnight).
func (tl *timeline) watchLandings(workflow string) (stop func() error, err error) {
	dir := filepath.Join(workflow, protocol.DirProcessed, protocol.DateDir(time.Now()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := fw.Add(dir); err != nil {
		fw.Close()
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		seen := map[string]int{} // job id → 1 manifest, 2 sidecar, 3 both
		for {
			select {
			case ev, ok := <-fw.Events:
				if !ok {
					done <- nil
					return
				}
				now := time.Now()
				if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Rename) && !ev.Has(fsnotify.Write) {
					continue
				}
				name := filepath.Base(ev.Name)
				if strings.HasPrefix(name, ".") {
					continue
				}
				bit := 1
				if id, ok := strings.CutSuffix(name, ".json"+protocol.ReportSuffix); ok {
					name, bit = id, 2
				} else if id, ok := strings.CutSuffix(name, ".json"); ok {
					name = id
				} else {
					continue
				}
				if seen[name]|bit == 3 && seen[name] != 3 {
					tl.add(name, "job", "landed", now)
				}
				seen[name] |= bit
			case err, ok := <-fw.Errors:
				if ok {
					done <- err
				} else {
					done <- nil
				}
				return
			}
		}
	}()
	return func() error {
		today := filepath.Base(dir)
		others, _ := filepath.Glob(filepath.Join(workflow, protocol.DirProcessed, "*", "*"+protocol.ReportSuffix))
		for _, o := range others {
			if filepath.Base(filepath.Dir(o)) != today {
				fw.Close()
				return fmt.Errorf("job %s landed outside %s: run the benchmark again", o, dir)
			}
		}
		err := fw.Close()
		return errors.Join(err, <-done)
	}, nil
}

// span is one interval of a stage for one migration or job.
type span struct {
	key        string
	start, end time.Duration
}

// spans pairs the starts and ends of step (status start, then done or
// failed or waiting; for convert, start then end).
func (tl *timeline) spans(step string) []span {
	open := map[string]time.Duration{}
	var out []span
	for _, m := range tl.sorted() {
		if m.step != step {
			continue
		}
		if m.status == "start" {
			open[m.key] = m.at
			continue
		}
		if s, ok := open[m.key]; ok {
			out = append(out, span{key: m.key, start: s, end: m.at})
			delete(open, m.key)
		}
	}
	return out
}

func (tl *timeline) sorted() []mark {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	ms := slices.Clone(tl.marks)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].at < ms[j].at })
	return ms
}

// idle is the time within [from, to] that no span covers.
func idle(ss []span, from, to time.Duration) time.Duration {
	ss = slices.Clone(ss)
	sort.Slice(ss, func(i, j int) bool { return ss[i].start < ss[j].start })
	var gaps time.Duration
	at := from
	for _, s := range ss {
		if s.start > at && s.start < to {
			gaps += min(s.start, to) - at
		}
		at = max(at, s.end)
	}
	if at < to {
		gaps += to - at
	}
	return gaps
}

// bounds is the first start and the last end of ss.
func bounds(ss []span) (first, last time.Duration) {
	if len(ss) == 0 {
		return 0, 0
	}
	first, last = ss[0].start, ss[0].end
	for _, s := range ss[1:] {
		first, last = min(first, s.start), max(last, s.end)
	}
	return first, last
}

// pipelineFigures are what a timeline shows about an apply.
type pipelineFigures struct {
	firstStep     time.Duration // planning: until the first step started
	exportIdle    time.Duration // before the last export ended, no export running
	firstConvert  time.Duration // until the worker started its first conversion
	convertIdle   time.Duration // between the first and last conversion, none running
	queued        time.Duration // longest time a job waited, submitted, for the worker
	noticeMax     time.Duration // longest from a job landing to await ending
	afterConvert  time.Duration // from the last conversion's end to the apply's end
	lastExportEnd time.Duration
}

// figures reads the timeline of an apply that ended at end. jobOf maps a
// job id to its migration's address.
func (tl *timeline) figures(end time.Duration, jobOf func(id string) string) pipelineFigures {
	var f pipelineFigures
	exports, converts := tl.spans("export"), tl.spans("convert")
	var steps []span
	for _, k := range []string{"export", "submit", "await", "define"} {
		steps = append(steps, tl.spans(k)...)
	}
	f.firstStep, _ = bounds(steps)
	_, f.lastExportEnd = bounds(exports)
	f.exportIdle = idle(exports, f.firstStep, f.lastExportEnd)
	first, last := bounds(converts)
	f.firstConvert = first
	f.convertIdle = idle(converts, first, last)
	f.afterConvert = end - last
	submitted := map[string]time.Duration{}
	for _, s := range tl.spans("submit") {
		submitted[s.key] = s.end
	}
	for _, s := range converts {
		if at, ok := submitted[jobOf(s.key)]; ok {
			f.queued = max(f.queued, s.start-at)
		}
	}
	for _, d := range tl.notices(jobOf) {
		f.noticeMax = max(f.noticeMax, d)
	}
	return f
}

// notices is, for each job that landed, the time from its landing to the
// end of the apply's await of it.
func (tl *timeline) notices(jobOf func(string) string) []time.Duration {
	awaited := map[string]time.Duration{}
	for _, s := range tl.spans("await") {
		awaited[s.key] = s.end
	}
	var out []time.Duration
	for _, m := range tl.sorted() {
		if m.step != "job" {
			continue
		}
		if at, ok := awaited[jobOf(m.key)]; ok {
			out = append(out, at-m.at)
		}
	}
	return out
}

// chart draws the timeline: one row per migration, a column per step of
// width scale. e export, q queued (submitted, not yet converting), c
// converting, w converted but not yet noticed, d define.
func (tl *timeline) chart(w io.Writer, end time.Duration, cols int, jobOf func(string) string) {
	rows := map[string][]byte{}
	var keys []string
	row := func(k string) []byte {
		if r, ok := rows[k]; ok {
			return r
		}
		r := bytes.Repeat([]byte{'.'}, cols)
		rows[k] = r
		keys = append(keys, k)
		return r
	}
	col := func(d time.Duration) int { return min(cols-1, max(0, int(int64(cols)*int64(d)/int64(max(end, 1))))) }
	paint := func(key string, from, to time.Duration, c byte) {
		r := row(key)
		for i := col(from); i <= col(to); i++ {
			r[i] = c
		}
	}
	submitted := map[string]time.Duration{}
	for _, s := range tl.spans("export") {
		paint(s.key, s.start, s.end, 'e')
	}
	for _, s := range tl.spans("submit") {
		submitted[s.key] = s.end
	}
	for _, s := range tl.spans("await") {
		paint(s.key, s.start, s.end, 'w')
	}
	for _, s := range tl.spans("convert") {
		a := jobOf(s.key)
		if at, ok := submitted[a]; ok {
			paint(a, at, s.start, 'q')
		}
		paint(a, s.start, s.end, 'c')
	}
	for _, s := range tl.spans("define") {
		paint(s.key, s.start, s.end, 'd')
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "0 .. %s, one column = %s; e export, q queued, c converting, w waiting to notice, d define\n",
		end.Round(time.Millisecond), (end / time.Duration(cols)).Round(time.Millisecond))
	for _, k := range keys {
		fmt.Fprintf(w, "%-14s %s\n", k, rows[k])
	}
}
