package hyper2kvm

import (
	"context"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fswatch"
)

// watchDebounce gathers a burst of events (a daemon moving a manifest and
// writing its sidecar) into one "look again"; it is short, because a
// sidecar landing is what apply and the agent wait for. watchMaxDelay
// bounds how long a steady stream of events can put the call off.
const (
	watchDebounce = 20 * time.Millisecond
	watchMaxDelay = 200 * time.Millisecond
)

// Watch calls changed when something in the workflow directory may have
// changed, through the shared watch loop (plugins/fswatch): the workflow
// directory and every directory under it (job directories, date folders
// as they appear), dot-files and dot-directories (temp files, workers'
// heartbeats) ignored. It runs until ctx ends. Events are hints: NFS
// delivers none, so callers also re-observe on a timer.
func (c *Converter) Watch(ctx context.Context, changed func()) error {
	return fswatch.Watch(ctx, fswatch.Options{Dirs: []string{c.cfg.WorkflowDir}, Recursive: true, Ignore: fswatch.Hidden,
		Debounce: watchDebounce, MaxDelay: watchMaxDelay, Log: c.log.Named("watch")}, func(fswatch.Trigger) { changed() })
}
