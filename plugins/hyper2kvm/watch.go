package hyper2kvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// watchDebounce gathers a burst of events (a daemon moving a manifest and
// writing its sidecar) into one "look again".
const watchDebounce = 250 * time.Millisecond

// Watch calls changed when something in the workflow directory may have
// changed. It watches directories only — the workflow directory, its four
// job directories and every date folder, adding new date folders as they
// appear — and runs until ctx ends. Events are hints: NFS delivers none, so
// callers also re-observe on a timer.
func (c *Converter) Watch(ctx context.Context, changed func()) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", c.cfg.WorkflowDir, err)
	}
	defer fw.Close()
	if err := fw.Add(c.cfg.WorkflowDir); err != nil {
		return fmt.Errorf("watch %s: %w", c.cfg.WorkflowDir, err)
	}
	for _, d := range []string{protocol.DirQueued, protocol.DirProcessing, protocol.DirProcessed, protocol.DirFailed} {
		c.watchTree(fw, c.dir(d))
	}
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Has(fsnotify.Create) {
				c.maybeWatch(fw, ev.Name)
			}
			settle = time.After(watchDebounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				changed()
				continue
			}
			c.log.Warn("fsnotify error", "error", err)
		case <-settle:
			settle = nil
			changed()
		}
	}
}

// watchTree adds dir and, for processed/ and failed/, its date folders.
func (c *Converter) watchTree(fw *fsnotify.Watcher, dir string) {
	if err := fw.Add(dir); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("cannot watch", "dir", dir, "error", err)
		}
		return
	}
	base := filepath.Base(dir)
	if base != protocol.DirProcessed && base != protocol.DirFailed {
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() && protocol.IsDateDir(e.Name()) {
			c.watchTree(fw, filepath.Join(dir, e.Name()))
		}
	}
}

// maybeWatch adds a directory that was just created where jobs live: one of
// the four job directories, or a date folder of processed/ or failed/.
func (c *Converter) maybeWatch(fw *fsnotify.Watcher, path string) {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return
	}
	parent, name := filepath.Dir(path), filepath.Base(path)
	switch {
	case parent == filepath.Clean(c.cfg.WorkflowDir):
		switch name {
		case protocol.DirQueued, protocol.DirProcessing, protocol.DirProcessed, protocol.DirFailed:
			c.watchTree(fw, path)
		}
	case (parent == c.dir(protocol.DirProcessed) || parent == c.dir(protocol.DirFailed)) && protocol.IsDateDir(name):
		c.watchTree(fw, path)
	}
}
