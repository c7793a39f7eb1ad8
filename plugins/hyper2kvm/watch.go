package hyper2kvm

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fswatch"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
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
// heartbeats) ignored. A job landing (a file under processed/ or
// failed/) calls at once, never put off by the window that other jobs'
// submissions and claims keep busy. It runs until ctx ends. Events are
// hints: NFS delivers none, so callers also re-observe on a timer.
func (c *Converter) Watch(ctx context.Context, changed func()) error {
	return fswatch.Watch(ctx, fswatch.Options{Dirs: []string{c.cfg.WorkflowDir}, Recursive: true, Ignore: fswatch.Hidden,
		Debounce: watchWindow, Leading: true, Urgent: c.landing, Log: c.log.Named("watch")}, func(fswatch.Trigger) { changed() })
}

// landing says whether path is under the processed/ or failed/ tree: a
// job ending, which apply and the agent wait for.
func (c *Converter) landing(path string) bool {
	rel, err := filepath.Rel(c.cfg.WorkflowDir, path)
	if err != nil {
		return false
	}
	top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return top == protocol.DirProcessed || top == protocol.DirFailed
}
