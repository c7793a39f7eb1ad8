package files

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/hypersdk/hyperagent/plugins"
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
// rescans are the truth: every directory of the tree is watched (new ones
// as they appear), and the tree is walked every watchResync, reporting a
// change when a name, size or mtime differs from the previous walk. On a
// network filesystem, or when no inotify instance is left, the walks run
// alone. Hidden entries are ignored: they are temporary files and caches.
func (s *Source) Watch(ctx context.Context, changed func()) error {
	o := watchOptions{debounce: watchDebounce, resync: watchResync, events: true}
	if fsType, remote := networkFS(s.dir); remote {
		s.log.Info("no file events on this filesystem; rescanning only", "dir", s.dir, "fs_type", fmt.Sprintf("%#x", fsType), "every", o.resync)
		o.events = false
	}
	return s.watch(ctx, changed, o)
}

func (s *Source) watch(ctx context.Context, changed func(), o watchOptions) error {
	t := &tree{root: s.dir, watched: map[string]bool{}}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if o.events {
		fw, err := fsnotify.NewWatcher()
		if err != nil {
			s.log.Warn("cannot watch; rescanning only", "dir", s.dir, "error", err)
		} else {
			defer fw.Close()
			t.fw, events, errs = fw, fw.Events, fw.Errors
		}
	}
	// The first walk adds the watches and sets the baseline; a missing or
	// unreadable dir is the caller's error, not a state to wait out.
	if _, err := t.scan(ctx, s.log); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch %s: %w", s.dir, err)
	}
	tick := time.NewTicker(o.resync)
	defer tick.Stop()
	var settle <-chan time.Time
	rescan := func(force bool) {
		moved, err := t.scan(ctx, s.log)
		if err != nil && moved && ctx.Err() == nil { // logged once per outage
			s.log.Warn("rescan failed", "dir", s.dir, "error", err)
		}
		if (force || moved) && ctx.Err() == nil {
			changed()
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
			if ev.Op == fsnotify.Chmod || hidden(filepath.Base(ev.Name)) {
				continue
			}
			settle = time.After(o.debounce)
		case err, ok := <-errs:
			if !ok {
				return nil
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				s.log.Warn("fsnotify error", "dir", s.dir, "error", err)
			}
			rescan(true)
		case <-settle:
			// The walk adds watches for directories created since the last
			// one, before reading them, so nothing written into them later
			// is missed; what was written before is in this walk.
			settle = nil
			rescan(true)
		case <-tick.C:
			rescan(false)
		}
	}
}

// tree is what the last walk saw: a digest of every entry's name, size and
// mtime, and the directories that have a watch.
type tree struct {
	root    string
	fw      *fsnotify.Watcher // nil: rescans only
	digest  uint64
	watched map[string]bool
}

// scan walks the tree, adds watches for new directories, and reports
// whether the digest moved since the previous scan.
func (t *tree) scan(ctx context.Context, log hclog.Logger) (bool, error) {
	h := fnv.New64a()
	seen := map[string]bool{}
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
		if d.IsDir() {
			seen[p] = true
			if t.fw != nil && !t.watched[p] {
				if err := t.fw.Add(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					log.Warn("cannot watch", "dir", p, "error", err)
				} else if err == nil {
					t.watched[p] = true
				}
			}
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
	// A directory that went away lost its watch with it; forget it so a
	// new one of the same name is watched again.
	for p := range t.watched {
		if !seen[p] {
			delete(t.watched, p)
		}
	}
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

// networkFS reports whether dir is on a filesystem that delivers no
// inotify events for changes made by other hosts.
func networkFS(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	switch int64(st.Type) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC,
		unix.FUSE_SUPER_MAGIC, unix.V9FS_MAGIC, unix.CEPH_SUPER_MAGIC:
		return int64(st.Type), true
	}
	return int64(st.Type), false
}
