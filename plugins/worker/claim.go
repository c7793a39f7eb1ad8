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

// claim is a job this worker owns: its manifest sits at processing/<name>
// and lease is its lease (lease.go).
type claim struct {
	name  string // file name in processing/ (may be clash-renamed)
	id    string // job id: the file's stem
	ext   string
	lease *lease
}

// errBusy says another worker is claiming or taking back a job right now.
var errBusy = errors.New("another worker is moving this job")

// claimNext takes the first claimable job of to_be_processed/ (queue.go
// says what happens to every other entry). It returns nil when nothing is
// left to claim now, and when a job file left for a later look settles
// (zero: none is).
func (w *Worker) claimNext() (*claim, time.Time, error) {
	entries, err := os.ReadDir(w.dir(protocol.DirQueued))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("claim: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	look := &queueLook{warned: map[string]bool{}}
	for _, e := range entries {
		name := e.Name()
		switch classify(name) {
		case entryIgnored:
			continue
		case entryOther:
			w.warnOnce(look, "other:"+name, "queue entry left alone: not a job file (the suffix is not .json, .yaml or .yml)", "name", escape(name))
			continue
		case entryBadName:
			w.rejectName(look, name)
			continue
		}
		id, ext, _ := protocol.JobFile(name)
		if e.Type().IsRegular() && w.unsettled(look, name, ext) {
			continue
		}
		c, err := w.claim(name, id, ext)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errBusy) {
			continue // another worker won it, or is taking it
		}
		if err != nil {
			w.warnOnce(look, "claim:"+name, "could not claim a job; trying the others", "name", name, "error", err)
			continue
		}
		if c.name != name {
			w.log.Warn("name taken in processing/, job renamed", "job", id, "as", c.name)
		}
		w.endLook(look, false)
		return c, look.wake, nil
	}
	w.endLook(look, true)
	return nil, look.wake, nil
}

// claim moves to_be_processed/<file> to processing/<id><ext>, or to
// <id>_<YYYYMMDD_HHMMSS><ext> when that name is taken (docs/protocol.md, section 2). The
// lease is created first (exclusively: one worker gets it) and the manifest
// renamed in after, without replacing anything: of several workers, on
// several hosts sharing the directory, exactly one wins each job; the
// others see ENOENT, or a lease they could not create, and move on. A job
// in processing/ put there by this function always has its lease.
func (w *Worker) claim(file, id, ext string) (*claim, error) {
	src := w.dir(protocol.DirQueued, file)
	procDir := w.dir(protocol.DirProcessing)
	var l *lease
	name, err := freeName(id+ext, id, ext, func(name string) error {
		if _, err := os.Lstat(filepath.Join(procDir, name)); err == nil {
			return os.ErrExist // taken: try a clash name
		}
		var err error
		if l, err = w.createLease(name); errors.Is(err, os.ErrExist) {
			return errBusy
		} else if err != nil {
			return err
		}
		if err := moveNoReplace(src, filepath.Join(procDir, name)); err != nil {
			l.drop()
			return err
		}
		return nil
	})
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("no free name in %s for %s", procDir, file)
	}
	if err != nil {
		return nil, err
	}
	for _, d := range []string{procDir, filepath.Dir(src)} {
		if err := fsutil.SyncDir(d); err != nil {
			w.log.Warn("claim: sync directory", "dir", d, "error", err)
		}
	}
	c := &claim{name: name, id: id, ext: ext, lease: l}
	if name != id+ext {
		c.id, _, _ = protocol.JobFile(name)
	}
	w.mu.Lock()
	w.running[l.token] = name
	w.mu.Unlock()
	return c, nil
}

// freeName tries the job file's own name, then up to ten of the daemon's
// clash names <id>_<YYYYMMDD_HHMMSS><ext> (docs/protocol.md, section 2),
// one second apart, until try returns anything but os.ErrExist. It
// returns the name last tried and try's error: os.ErrExist when every
// name was taken.
func freeName(name, id, ext string, try func(name string) error) (string, error) {
	err := try(name)
	for i := 0; errors.Is(err, os.ErrExist) && i < 10; i++ {
		name = protocol.ClashName(protocol.ClashBase(id), ext, time.Now().Add(time.Duration(i)*time.Second))
		err = try(name)
	}
	return name, err
}

// moveAside renames src into dir under its own name, or under
// <id>_<YYYYMMDD_HHMMSS><ext> when that name is taken (docs/protocol.md, section 2). It
// returns the name used. A missing src is os.ErrNotExist.
func (w *Worker) moveAside(src, dir, id, ext string) (string, error) {
	name, err := freeName(id+ext, id, ext, func(name string) error { return moveNoReplace(src, filepath.Join(dir, name)) })
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
	before, err := os.Lstat(src) // a symlink is moved, never followed
	if err != nil {
		return err
	}
	if before.IsDir() {
		// A directory cannot be linked. A rename onto an existing empty
		// directory would replace it: look first (a queue entry that is a
		// directory only ever fails, so the window is harmless).
		if _, err := os.Lstat(dst); err == nil {
			return &os.LinkError{Op: "rename", Old: src, New: dst, Err: os.ErrExist}
		}
		return os.Rename(src, dst)
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
	if after, err := os.Lstat(dst); err != nil || !os.SameFile(before, after) {
		return fmt.Errorf("link move %s: destination changed under us", dst)
	}
	return nil
}

// handBack returns a job in processing/ to the queue (shutdown past the
// grace period, or a dead owner's job taken back). The caller holds the
// job's lease or its tombstone (lease.go). The manifest is unchanged, so
// the next claimer starts over.
func (w *Worker) handBack(name string) error {
	id, ext, ok := protocol.JobFile(name)
	if !ok {
		return fmt.Errorf("hand back %s: not a job file", name)
	}
	w.removeProgress(name) // the claim's progress is over; the next starts at 0
	if _, err := w.moveAside(w.dir(protocol.DirProcessing, name), w.dir(protocol.DirQueued), id, ext); err != nil {
		return fmt.Errorf("hand back %s: %w", name, err)
	}
	return nil
}
