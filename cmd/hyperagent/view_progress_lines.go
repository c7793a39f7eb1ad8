package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

// lineDisplay shows apply's steps and progress off a terminal (a log, a
// pipe, CI): timestamped lines, a step's start and end, and an item's
// progress at its first report, at its end, and in between at most every
// lineEvery when a further 10% is done (progressTracker.report), so that
// logs stay short and greppable:
//
//	2026-12-01T15:29:03+01:00 migration.db: export start
//	2026-12-01T15:29:03+01:00 migration.db: export disk-0.vmdk 0% (0 B of 1.0 GiB)
//	2026-12-01T15:29:13+01:00 migration.db: export disk-0.vmdk 40% (410.0 MiB of 1.0 GiB), 41.0 MiB/s, about 15s left
//	2026-12-01T15:29:28+01:00 migration.db: export disk-0.vmdk 100% (1.0 GiB of 1.0 GiB) in 25s
//	2026-12-01T15:29:28+01:00 migration.db: export done
type lineDisplay struct {
	mu  sync.Mutex
	out io.Writer
	t   *progressTracker
}

func newLineDisplay(out io.Writer, now func() time.Time) *lineDisplay {
	return &lineDisplay{out: out, t: newProgressTracker(now)}
}

func (d *lineDisplay) event(ev reconcile.Event) {
	if ev.Status == "start" {
		d.t.started(ev.Address, ev.Step)
	} else {
		d.t.ended(ev.Address)
	}
	d.println(stepLine(ev))
}

func (d *lineDisplay) progress(ev plugins.ProgressEvent) {
	if s, due := d.t.report(ev); due {
		d.println(ev.Address + ": " + progressText(s))
	}
}

func (d *lineDisplay) close() {}

func (d *lineDisplay) println(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "%s %s\n", d.t.now().Format(time.RFC3339), line)
}
