package fswatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// Trigger says why changed was called.
type Trigger string

const (
	TriggerEvents   Trigger = "events"   // file events settled
	TriggerResync   Trigger = "resync"   // the periodic look, events or not
	TriggerOverflow Trigger = "overflow" // the kernel dropped events: look now
)

// Options configure a watch.
type Options struct {
	// Dirs are watched; one that does not exist yet is added once it
	// does (checked at every resync and when its parent is watched).
	Dirs []string
	// Recursive watches every subdirectory too, new ones as they appear.
	Recursive bool
	// Ignore says which base names to pay no attention to (temporary and
	// hidden files); their events call nothing and, with Recursive,
	// such directories are not entered. nil ignores nothing.
	Ignore func(name string) bool
	// Debounce is the quiet time after an event before changed is called
	// (default 50 ms); MaxDelay bounds how long a steady stream of events
	// can put it off (default 10 × Debounce).
	Debounce, MaxDelay time.Duration
	// Leading calls changed at the first event that comes Debounce or more
	// after the last call, and gathers the events that come sooner into one
	// call Debounce after it (MaxDelay is not used): an isolated change is
	// seen at once, and a stream still makes at most one call per Debounce.
	// For a watcher that someone waits on (a job's sidecar landing).
	Leading bool
	// Urgent says which paths' events call changed at once whatever the
	// window: what someone waits on (a job landing in processed/), which
	// a busy directory's other events must not put off. The call covers
	// the events gathered before it. nil: none is.
	Urgent func(path string) bool
	// Resync calls changed on this period whatever the events (0: never).
	Resync time.Duration
	// NoEvents runs on the resync alone, as where no events come.
	NoEvents bool
	Log      hclog.Logger
}

func (o *Options) defaults() {
	if o.Debounce <= 0 {
		o.Debounce = 50 * time.Millisecond
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 10 * o.Debounce
	}
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
}

// Watch calls changed when something under the directories may have
// changed, until ctx ends; calls never overlap. It returns nil when ctx
// ends. Where fsnotify cannot be had (no inotify instance left), or a
// directory is on a filesystem that delivers no events for other hosts'
// changes (EventsDelivered), it says so once in the log and the resync
// carries the load.
func Watch(ctx context.Context, o Options, changed func(Trigger)) error {
	o.defaults()
	w := &watcher{o: o, watched: map[string]bool{}}
	if !o.NoEvents {
		fw, err := fsnotify.NewWatcher()
		if err != nil {
			o.Log.Warn("file events unavailable; resyncing only", "error", err, "every", o.Resync)
		} else {
			defer fw.Close()
			w.fw = fw
		}
	}
	for _, d := range o.Dirs {
		if fsType, ok := EventsDelivered(d); !ok {
			o.Log.Info("no file events from other hosts on this filesystem; resyncing only", "dir", d, "fs_type", fsType, "every", o.Resync)
		}
	}
	w.addAll()
	var tick <-chan time.Time
	if o.Resync > 0 {
		t := time.NewTicker(o.Resync)
		defer t.Stop()
		tick = t.C
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fw != nil {
		events, errs = w.fw.Events, w.fw.Errors
	}
	var settle, deadline <-chan time.Time
	var last time.Time // of the last call
	fire := func(tr Trigger) {
		settle, deadline = nil, nil
		last = time.Now()
		if ctx.Err() == nil {
			changed(tr)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod || w.ignored(ev.Name) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				w.maybeAdd(ev.Name)
			}
			if o.Urgent != nil && o.Urgent(ev.Name) {
				fire(TriggerEvents)
				continue
			}
			if o.Leading {
				if settle == nil {
					if wait := o.Debounce - time.Since(last); wait > 0 {
						settle = time.After(wait)
					} else {
						fire(TriggerEvents)
					}
				}
				continue
			}
			settle = time.After(o.Debounce)
			if deadline == nil {
				deadline = time.After(o.MaxDelay)
			}
		case err, ok := <-errs:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.addAll()
				fire(TriggerOverflow)
				continue
			}
			o.Log.Warn("file events", "error", err)
		case <-settle:
			fire(TriggerEvents)
		case <-deadline:
			fire(TriggerEvents)
		case <-tick:
			w.addAll()
			fire(TriggerResync)
		}
	}
}

type watcher struct {
	o       Options
	fw      *fsnotify.Watcher // nil: resync only
	watched map[string]bool
}

func (w *watcher) ignored(path string) bool {
	return w.o.Ignore != nil && w.o.Ignore(filepath.Base(path))
}

// addAll (re)adds the watches: directories that appeared, and ones whose
// watch went with them (a directory removed and made again).
func (w *watcher) addAll() {
	if w.fw == nil {
		return
	}
	current := map[string]bool{}
	for _, p := range w.fw.WatchList() {
		current[p] = true
	}
	w.watched = current
	for _, d := range w.o.Dirs {
		w.add(d)
	}
}

func (w *watcher) add(dir string) {
	if !w.watched[dir] {
		if err := w.fw.Add(dir); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				w.o.Log.Warn("cannot watch", "dir", dir, "error", err)
			}
			return
		}
		w.watched[dir] = true
	}
	if !w.o.Recursive {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && !w.ignored(e.Name()) {
			w.add(filepath.Join(dir, e.Name()))
		}
	}
}

// maybeAdd watches a directory just created under a watched one (with
// Recursive), or one of Dirs that appeared.
func (w *watcher) maybeAdd(path string) {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return
	}
	for _, d := range w.o.Dirs {
		if filepath.Clean(d) == filepath.Clean(path) {
			w.add(path)
			return
		}
	}
	if w.o.Recursive && !w.ignored(path) {
		w.add(path)
	}
}

// EventsDelivered says whether dir is on a filesystem whose inotify events
// include other hosts' changes; fsType is its statfs magic, in hex. NFS,
// SMB/CIFS, FUSE, 9p and Ceph deliver events for local changes only. A
// directory that cannot be examined counts as local.
func EventsDelivered(dir string) (fsType string, ok bool) {
	t, remote, err := fsutil.RemoteFS(dir)
	if err != nil {
		return "", true
	}
	return fmt.Sprintf("%#x", t), !remote
}

// Hidden is the usual Ignore: dot-files are temporary files (a submitter's
// .job.json.tmp, a download's .part) and caches.
func Hidden(name string) bool { return len(name) > 0 && name[0] == '.' }
