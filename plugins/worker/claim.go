package worker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// claim is a job this worker owns: its manifest sits at processing/<name>.
type claim struct {
	name string // file name in processing/ (may be clash-renamed)
	id   string // job id: the file's stem
	ext  string
}

func (c *claim) heartbeat(w *Worker) string {
	return w.dir(protocol.DirProcessing, "."+c.name+".lease")
}

// claimNext takes the first claimable job of to_be_processed/ by renaming
// it into processing/. Rename is atomic: of several workers (on several
// hosts sharing the directory) exactly one wins each job; the others see
// ENOENT and try the next. It returns nil when nothing is left.
func (w *Worker) claimNext() (*claim, error) {
	entries, err := os.ReadDir(w.dir(protocol.DirQueued))
	if err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		id, ext, ok := protocol.JobFile(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		src := w.dir(protocol.DirQueued, e.Name())
		name, err := w.moveAside(src, w.dir(protocol.DirProcessing), id, ext)
		if errors.Is(err, os.ErrNotExist) {
			continue // another worker won it
		}
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", e.Name(), err)
		}
		c := &claim{name: name, id: id, ext: ext}
		if name != e.Name() {
			c.id, _, _ = protocol.JobFile(name)
			w.log.Warn("name taken in processing/, job renamed", "job", id, "as", name)
		}
		w.mu.Lock()
		w.running[c.name] = true
		w.mu.Unlock()
		if err := w.takeLease(c); err != nil {
			w.log.Warn("heartbeat", "job", c.id, "error", err)
		}
		return c, nil
	}
	return nil, nil
}

// moveAside renames src into dir under its own name, or under
// <id>_<YYYYMMDD_HHMMSS><ext> when that name is taken (PROTOCOL.md §1). It
// returns the name used. A missing src is os.ErrNotExist.
func (w *Worker) moveAside(src, dir, id, ext string) (string, error) {
	name := id + ext
	err := moveNoReplace(src, filepath.Join(dir, name))
	for i := 0; errors.Is(err, os.ErrExist) && i < 10; i++ {
		name = protocol.ClashName(id, ext, time.Now().Add(time.Duration(i)*time.Second))
		err = moveNoReplace(src, filepath.Join(dir, name))
	}
	if err != nil {
		return "", err
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return name, err
	}
	return name, fsutil.SyncDir(filepath.Dir(src))
}

// moveNoReplace renames src to dst, failing with os.ErrExist instead of
// replacing dst (plain rename silently replaces). Where the filesystem has
// no RENAME_NOREPLACE (NFS answers EINVAL) it links and unlinks: link fails
// on an existing name, and a second worker that linked the same inode under
// another name sees it is the same file and backs off.
func moveNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return linkMove(src, dst)
	}
	return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
}

func linkMove(src, dst string) error {
	before, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.Link(src, dst); err != nil {
		return err
	}
	// Another worker may have linked the same file under another name in
	// the meantime; whoever unlinks src first wins.
	if err := os.Remove(src); err != nil {
		os.Remove(dst)
		if errors.Is(err, os.ErrNotExist) {
			return err
		}
		return fmt.Errorf("unlink %s after link: %w", src, err)
	}
	if after, err := os.Stat(dst); err != nil || !os.SameFile(before, after) {
		return fmt.Errorf("link move %s: destination changed under us", dst)
	}
	return nil
}

// handBack returns a claimed job to the queue (shutdown past the grace
// period, or a reclaimed dead owner's job). The manifest is unchanged, so
// the next claimer starts over.
func (w *Worker) handBack(name string) error {
	id, ext, ok := protocol.JobFile(name)
	if !ok {
		return fmt.Errorf("hand back %s: not a job file", name)
	}
	if _, err := w.moveAside(w.dir(protocol.DirProcessing, name), w.dir(protocol.DirQueued), id, ext); err != nil {
		return fmt.Errorf("hand back %s: %w", name, err)
	}
	return nil
}
