package main

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fsnotify/fsnotify"
)

// campaignWatch measures, from the filesystem's own events, what the
// hosts of a campaign do to the shared places: exports in progress in
// the export directories (an OVA unpacks its members into dot-temp
// files, renamed into place once all are whole), exports completed (the
// disk member renamed into place), and jobs in flight in the workflow
// directory (a manifest in to_be_processed/ or processing/). inotify
// delivers one instance's events in the order they happened, so the
// high-water marks are exact, not sampled.
type campaignWatch struct {
	w    *fsnotify.Watcher
	disk string // the disk member's name in an export directory
	tbp  string // <workflow>/to_be_processed
	proc string // <workflow>/processing

	mu          sync.Mutex
	exportDirs  map[string]bool
	temps       map[string]map[string]bool // export dir → its temp files
	dead        map[string]bool            // temp files a host that died left
	completions map[string]int             // export dir → exports completed
	exportsHigh int
	jobs        map[string]bool
	jobsHigh    int
	err         error
	done        chan struct{}
}

func newCampaignWatch(t *testing.T, disk, workflow string, exportDirs []string) *campaignWatch {
	t.Helper()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	cw := &campaignWatch{w: w, disk: disk, tbp: filepath.Join(workflow, "to_be_processed"), proc: filepath.Join(workflow, "processing"),
		exportDirs: map[string]bool{}, temps: map[string]map[string]bool{}, dead: map[string]bool{},
		completions: map[string]int{}, jobs: map[string]bool{}, done: make(chan struct{})}
	for _, d := range append([]string{cw.tbp, cw.proc}, exportDirs...) {
		if err := w.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range exportDirs {
		cw.exportDirs[d] = true
		cw.temps[d] = map[string]bool{}
	}
	go cw.run()
	t.Cleanup(func() { w.Close(); <-cw.done })
	return cw
}

func (cw *campaignWatch) run() {
	defer close(cw.done)
	for {
		select {
		case ev, ok := <-cw.w.Events:
			if !ok {
				return
			}
			cw.event(ev)
		case err, ok := <-cw.w.Errors:
			if !ok {
				return
			}
			cw.mu.Lock()
			// An overflow loses events: the marks would be guesses.
			cw.err = errors.Join(cw.err, err)
			cw.mu.Unlock()
		}
	}
}

func (cw *campaignWatch) event(ev fsnotify.Event) {
	dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name)
	gone := ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
	cw.mu.Lock()
	defer cw.mu.Unlock()
	switch {
	case cw.exportDirs[dir] && strings.HasPrefix(base, ".") && strings.HasSuffix(base, ".tmp"):
		if ev.Has(fsnotify.Create) {
			cw.temps[dir][base] = true
		} else if gone {
			delete(cw.temps[dir], base)
		}
		cw.exportsHigh = max(cw.exportsHigh, cw.exporting())
	case cw.exportDirs[dir] && base == cw.disk && ev.Has(fsnotify.Create):
		cw.completions[dir]++
	case (dir == cw.tbp || dir == cw.proc) && !strings.HasPrefix(base, ".") && strings.HasSuffix(base, ".json"):
		if ev.Has(fsnotify.Create) {
			cw.jobs[ev.Name] = true
		} else if gone {
			delete(cw.jobs, ev.Name)
		}
		cw.jobsHigh = max(cw.jobsHigh, len(cw.jobs))
	}
}

// exporting counts the export directories with a temp file of a live
// host: exports in progress. The caller holds cw.mu.
func (cw *campaignWatch) exporting() int {
	n := 0
	for dir, ts := range cw.temps {
		for name := range ts {
			if !cw.dead[filepath.Join(dir, name)] {
				n++
				break
			}
		}
	}
	return n
}

// died marks temp files as left by a host that died: they are no
// longer exports in progress.
func (cw *campaignWatch) died(paths []string) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	for _, p := range paths {
		cw.dead[p] = true
	}
}

// marks returns the high-water marks, the completions by export
// directory, and any error the watch met.
func (cw *campaignWatch) marks() (exports, jobs int, completions map[string]int, err error) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	completions = map[string]int{}
	for d, n := range cw.completions {
		completions[d] = n
	}
	return cw.exportsHigh, cw.jobsHigh, completions, cw.err
}
