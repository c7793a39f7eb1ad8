package files

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fswatch"
)

var _ plugins.Watcher = (*Source)(nil)

const (
	// watchDebounce gathers a burst of events (a disk being copied in
	// writes thousands of times) into one "look again".
	watchDebounce = 250 * time.Millisecond
	// watchResync is how often the tree is walked to catch what events
	// miss: NFS and other network filesystems deliver none, and a file
	// written into a new directory before its watch was added gives none.
	watchResync = 15 * time.Second
)

// watchOptions tune the loop; Watch uses the constants above.
type watchOptions struct {
	debounce, resync time.Duration
	events           bool // use fsnotify; false: rescans alone
}

// Watch implements plugins.Watcher: it calls changed when something under
// dir may have changed, and runs until ctx ends. Events are hints and
// rescans are the truth: the shared watch loop (plugins/fswatch) watches
// every directory of the tree, new ones as they appear, and the tree is
// walked every watchResync, reporting a change when a name, size or mtime
// differs from the previous walk. On a network filesystem the walks run
// alone. Hidden entries are ignored: they are temporary files and caches.
func (s *Source) Watch(ctx context.Context, changed func()) error {
	o := watchOptions{debounce: watchDebounce, resync: watchResync, events: true}
	if fsType, ok := fswatch.EventsDelivered(s.dir); !ok {
		s.log.Info("no file events on this filesystem; rescanning only", "dir", s.dir, "fs_type", fsType, "every", o.resync)
		o.events = false
	}
	return s.watch(ctx, changed, o)
}

func (s *Source) watch(ctx context.Context, changed func(), o watchOptions) error {
	t := &tree{root: s.dir}
	// The first walk sets the baseline; a missing or unreadable dir is the
	// caller's error, not a state to wait out.
	if _, err := t.scan(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch %s: %w", s.dir, err)
	}
	return fswatch.Watch(ctx, fswatch.Options{Dirs: []string{s.dir}, Recursive: true, Ignore: hidden,
		Debounce: o.debounce, Resync: o.resync, NoEvents: !o.events, Log: s.log}, func(tr fswatch.Trigger) {
		moved, err := t.scan(ctx)
		if err != nil && moved && ctx.Err() == nil { // logged once per outage
			s.log.Warn("rescan failed", "dir", s.dir, "error", err)
		}
		// Events say something moved; a resync says so only when the
		// walk differs.
		if (tr != fswatch.TriggerResync || moved) && ctx.Err() == nil {
			changed()
		}
	})
}

// tree is what the last walk saw: a digest of every entry's name, size and
// mtime.
type tree struct {
	root   string
	digest uint64
}

// scan walks the tree and reports whether the digest moved since the
// previous scan.
func (t *tree) scan(ctx context.Context) (bool, error) {
	h := fnv.New64a()
	err := filepath.WalkDir(t.root, func(p string, d fs.DirEntry, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			if p == t.root {
				return err
			}
			// Removed between listing and visiting, or unreadable: the
			// digest records it as absent.
			return nil
		}
		if p != t.root && hidden(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		// Walks visit entries in lexical order, so equal trees hash equal.
		// A directory counts by name only: its mtime moves with hidden
		// entries too, and its visible entries are hashed themselves.
		if d.IsDir() {
			fmt.Fprintf(h, "%s/\x00", p)
			return nil
		}
		if fi, err := d.Info(); err == nil {
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00", p, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
		}
		return nil
	})
	if err != nil {
		// An unreadable tree counts as an empty one: reported once when
		// it goes, and again when it comes back.
		moved := t.digest != 0
		t.digest = 0
		return moved, err
	}
	sum := h.Sum64()
	moved := sum != t.digest
	t.digest = sum
	return moved, nil
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }
