package hyper2kvm

import (
	"context"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fswatch"
)

// watchWindow: a sidecar landing is what apply and the agent wait for, so
// the first event after a quiet moment says "look again" at once; the
// events that follow within the window (the daemon writing the sidecar
// after moving the manifest, other jobs being claimed) are gathered into
// one more call at its end, so a busy directory is scanned at most once
// per window.
const watchWindow = 20 * time.Millisecond

// Watch calls changed when something in the workflow directory may have
// changed, through the shared watch loop (plugins/fswatch): the workflow
// directory and every directory under it (job directories, date folders
// as they appear), dot-files and dot-directories (temp files, workers'
// heartbeats) ignored. It runs until ctx ends. Events are hints: NFS
// delivers none, so callers also re-observe on a timer.
func (c *Converter) Watch(ctx context.Context, changed func()) error {
	return fswatch.Watch(ctx, fswatch.Options{Dirs: []string{c.cfg.WorkflowDir}, Recursive: true, Ignore: fswatch.Hidden,
		Debounce: watchWindow, Leading: true, Log: c.log.Named("watch")}, func(fswatch.Trigger) { changed() })
}
