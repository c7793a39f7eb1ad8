package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// progressView shows the bytes plugins report (a disk downloading, an OVA
// unpacking) while apply prints its step lines. On a terminal the items in
// flight share one status line of bars at the bottom, redrawn at most
// every redrawEvery and cleared before any other line is printed;
// elsewhere each item gets a log line every 10% and one when it is done,
// so logs stay short and greppable. With -json the same decile points are
// JSON objects of type "progress".
//
// Every write goes through mu, which apply's event lines share.
type progressView struct {
	mu   *sync.Mutex
	out  io.Writer
	tty  bool
	emit func(any) // -json: writes one JSON line (takes mu itself); nil otherwise
	now  func() time.Time

	items    map[progressKey]*progressItem
	order    []progressKey // first seen first, for a stable status line
	drawn    bool          // a status line is on screen
	lastDraw time.Time
}

type progressKey struct{ addr, item string }

type progressItem struct {
	done, total int64
	decile      int // the last 10% mark reported (non-TTY, JSON)
}

// redrawEvery bounds how often the terminal status line is redrawn.
const redrawEvery = 200 * time.Millisecond

// statusWidth bounds the status line, so it never wraps on a normal
// terminal (a wrapped line cannot be cleared with \r).
const statusWidth = 100

func newProgressView(mu *sync.Mutex, out io.Writer, tty bool, emit func(any)) *progressView {
	return &progressView{mu: mu, out: out, tty: tty && emit == nil, emit: emit, now: time.Now,
		items: map[progressKey]*progressItem{}}
}

// progressJSON is one -json progress line.
type progressJSON struct {
	Type    string `json:"type"`
	Address string `json:"address"`
	Item    string `json:"item"`
	Done    int64  `json:"done"`
	Total   int64  `json:"total"`
}

// report is the plugins.Progress hook. It is called from many goroutines.
func (v *progressView) report(ev plugins.ProgressEvent) {
	v.mu.Lock()
	k := progressKey{ev.Address, ev.Item}
	it, ok := v.items[k]
	if !ok {
		it = &progressItem{decile: -1}
		v.items[k] = it
		v.order = append(v.order, k)
	}
	it.done, it.total = ev.Done, ev.Total
	finished := ev.Total >= 0 && ev.Done >= ev.Total
	var line string
	var js *progressJSON
	if d := decile(ev.Done, ev.Total); finished || d > it.decile {
		it.decile = d
		if v.emit != nil {
			js = &progressJSON{"progress", ev.Address, ev.Item, ev.Done, ev.Total}
		} else if !v.tty || finished {
			line = fmt.Sprintf("%s: %s %s", ev.Address, ev.Item, amount(ev.Done, ev.Total))
		}
	}
	if finished {
		v.forget(k)
	}
	if line != "" {
		v.printLocked(line)
	} else if v.tty && v.now().Sub(v.lastDraw) >= redrawEvery {
		v.drawLocked()
	}
	v.mu.Unlock()
	if js != nil {
		v.emit(*js)
	}
}

// println prints a line above the status line. Callers do not hold mu.
func (v *progressView) println(line string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.printLocked(line)
}

// done clears the status line for good (apply's summary follows).
func (v *progressView) done() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clearLocked()
	v.items, v.order = map[progressKey]*progressItem{}, nil
}

func (v *progressView) printLocked(line string) {
	v.clearLocked()
	fmt.Fprintln(v.out, line)
	if v.tty && len(v.order) > 0 {
		v.drawLocked()
	}
}

func (v *progressView) clearLocked() {
	if v.drawn {
		fmt.Fprint(v.out, "\r\x1b[K")
		v.drawn = false
	}
}

func (v *progressView) drawLocked() {
	var parts []string
	for _, k := range v.order {
		it := v.items[k]
		parts = append(parts, fmt.Sprintf("%s %s", k.item, bar(it.done, it.total)))
	}
	s := strings.Join(parts, "  ")
	if r := []rune(s); len(r) > statusWidth {
		s = string(r[:statusWidth-1]) + "…"
	}
	fmt.Fprint(v.out, "\r\x1b[K"+s)
	v.drawn = s != ""
	v.lastDraw = v.now()
}

func (v *progressView) forget(k progressKey) {
	delete(v.items, k)
	for i, o := range v.order {
		if o == k {
			v.order = append(v.order[:i], v.order[i+1:]...)
			break
		}
	}
}

// decile is the 10% mark reached, or -1 when the total is unknown (then
// only the end is reported).
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

// bar renders a 10-cell bar and the percentage: [####------] 40%.
func bar(done, total int64) string {
	if total <= 0 {
		return fsutil.FormatBytes(done)
	}
	n := int(min(done*10/total, 10))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", 10-n) + "] " + fmt.Sprintf("%d%%", done*100/total)
}
