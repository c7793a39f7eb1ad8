package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
)

const (
	stateFile    = "state.json"
	backupFile   = "state.json.backup"
	lockFile     = "state.lock"
	lockInfoFile = "state.lock.info"
)

// localBackend is the default backend: one JSON file in the state
// directory, replaced atomically on every write, the state before it kept
// as a backup, guarded by flock(2) on state.lock.
type localBackend struct {
	dir string
	fl  *flock.Flock // the lock this process holds, nil when none
	// seen is the state file as this backend last read or wrote it, and
	// seenVersion its version: while the file at the path is still that
	// one, nobody else wrote, and a write need not read it again.
	seen        os.FileInfo
	seenVersion Version
}

var (
	_ Backend   = (*localBackend)(nil)
	_ Backupper = (*localBackend)(nil)
)

func (b *localBackend) String() string { return b.dir }

func (b *localBackend) path() string       { return filepath.Join(b.dir, stateFile) }
func (b *localBackend) backupPath() string { return filepath.Join(b.dir, backupFile) }

// Load reads the state; a missing file is an empty state. A state that
// does not decode names its backup.
func (b *localBackend) Load(context.Context) (*State, error) {
	data, fi, err := readWithInfo(b.path())
	if errors.Is(err, os.ErrNotExist) {
		b.seen, b.seenVersion = nil, Version{}
		return NewState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	st, err := DecodeState(data)
	if err != nil {
		if _, berr := os.Stat(b.backupPath()); berr == nil {
			return nil, fmt.Errorf("%s: %w; the state before the last write is in %s (hyperagent state restore puts it back)", b.path(), err, b.backupPath())
		}
		return nil, fmt.Errorf("%s: %w", b.path(), err)
	}
	b.seen, b.seenVersion = fi, VersionOf(st)
	return st, nil
}

// readWithInfo reads a file and stats the very file it read (not a file
// renamed over it meanwhile).
func readWithInfo(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(f)
	return data, fi, err
}

// LoadBackup reads the state as it was before the last write.
func (b *localBackend) LoadBackup(context.Context) (*State, error) {
	data, err := os.ReadFile(b.backupPath())
	if err != nil {
		return nil, fmt.Errorf("reading the state's backup: %w", err)
	}
	st, err := DecodeState(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.backupPath(), err)
	}
	return st, nil
}

// Write replaces the state file atomically: temp file in the same
// directory, fsync, rename, fsync of the directory. The file is 0600. A
// process killed at any instant leaves either the old or the new state,
// never a mix. The state it replaces is kept as the backup first: a hard
// link to the old file (which the rename leaves untouched), so keeping
// it costs no copy.
//
// The flock makes this process the only writer; what it checks besides is
// that the lock was not broken (force-unlock) and that the file is still
// the one it read, or else one that base follows. A file that does not
// decode is replaced without that check: restoring over it is how it is
// repaired.
func (b *localBackend) Write(_ context.Context, st *State, base Version) error {
	if b.fl == nil {
		return errors.New("the state lock is not held")
	}
	// force-unlock removes the lock file: a holder still running after
	// that holds a lock on nothing, and must not write.
	if same, err := lockedFileIsCurrent(b.fl, filepath.Join(b.dir, lockFile)); err != nil || !same {
		return fmt.Errorf("the state lock was broken (hyperagent force-unlock?) while this process held it; nothing was written")
	}
	if stored, ok, err := b.stored(); err != nil {
		return err
	} else if ok && !stored.Follows(base) {
		return &ConflictError{Where: b.dir, Stored: stored, Base: base}
	}
	data, err := st.Encode()
	if err != nil {
		return err
	}
	if err := b.keepBackup(); err != nil {
		return fmt.Errorf("keeping the backup: %w", err)
	}
	if err := WriteFileAtomic(b.path(), data); err != nil {
		return err
	}
	b.seen, b.seenVersion = nil, VersionOf(st)
	if fi, err := os.Stat(b.path()); err == nil {
		b.seen = fi
	}
	return nil
}

// stored is the version of the state file now; ok is false when it does
// not decode (it is not compared then).
func (b *localBackend) stored() (v Version, ok bool, err error) {
	fi, err := os.Stat(b.path())
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Version{}, true, nil
	case err != nil:
		return Version{}, false, fmt.Errorf("reading state: %w", err)
	case b.seen != nil && os.SameFile(fi, b.seen) && fi.Size() == b.seen.Size() && fi.ModTime().Equal(b.seen.ModTime()):
		return b.seenVersion, true, nil
	}
	data, err := os.ReadFile(b.path())
	if err != nil {
		return Version{}, false, fmt.Errorf("reading state: %w", err)
	}
	st, err := DecodeState(data)
	if err != nil {
		return Version{}, false, nil
	}
	return VersionOf(st), true, nil
}

// keepBackup makes the current state file the backup: a link under a
// temporary name renamed over the old backup, so the backup too is
// replaced atomically; where the filesystem has no hard links, a copy
// written atomically. No state file yet means no backup to keep.
func (b *localBackend) keepBackup() error {
	tmp := b.backupPath() + ".tmp"
	_ = os.Remove(tmp) // left by a process killed here
	err := os.Link(b.path(), tmp)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err == nil:
		return os.Rename(tmp, b.backupPath())
	}
	data, rerr := os.ReadFile(b.path())
	if errors.Is(rerr, os.ErrNotExist) {
		return nil
	}
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	return WriteFileAtomic(b.backupPath(), data)
}

// Lock takes flock(2) on state.lock: the kernel releases it when the
// holder dies, so a stale info file left by a killed process is simply
// replaced.
func (b *localBackend) Lock(_ context.Context, info LockInfo) error {
	if b.fl != nil {
		return errors.New("the state lock is already held by this process")
	}
	path := filepath.Join(b.dir, lockFile)
	for tries := 0; ; tries++ {
		fl := flock.New(path, flock.SetPermissions(0o600))
		ok, err := fl.TryLock()
		if err != nil {
			return fmt.Errorf("locking state: %w", err)
		}
		if !ok {
			holder, _, _ := ReadLockInfo(b.dir)
			return &LockedError{Dir: b.dir, Info: holder}
		}
		// force-unlock removes the lock file; a lock on a removed file
		// guards nothing, so make sure ours is the file at the path.
		if same, err := lockedFileIsCurrent(fl, path); err != nil || !same {
			_ = fl.Unlock()
			if err != nil && tries > 3 {
				return fmt.Errorf("locking state: %w", err)
			}
			continue
		}
		data, _ := json.MarshalIndent(info, "", "  ")
		if err := WriteFileAtomic(filepath.Join(b.dir, lockInfoFile), append(data, '\n')); err != nil {
			_ = fl.Unlock()
			return fmt.Errorf("writing lock info: %w", err)
		}
		b.fl = fl
		return nil
	}
}

func lockedFileIsCurrent(fl *flock.Flock, path string) (bool, error) {
	held, err := fl.Stat()
	if err != nil {
		return false, err
	}
	cur, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(held, cur), nil
}

// Unlock removes the info file if it still names this hold, then
// releases the flock. The lock file stays: removing it would let two
// processes lock different inodes.
func (b *localBackend) Unlock(_ context.Context, info LockInfo) error {
	if b.fl == nil {
		return nil
	}
	fl := b.fl
	b.fl = nil
	var errs []error
	if cur, ok, _ := ReadLockInfo(b.dir); ok && cur.ID == info.ID {
		if err := os.Remove(filepath.Join(b.dir, lockInfoFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := fl.Unlock(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (b *localBackend) Holder(context.Context) (LockInfo, bool, bool, error) {
	info, ok, err := ReadLockInfo(b.dir)
	if err != nil || !ok {
		return info, ok, false, err
	}
	held, err := LockHeld(b.dir)
	return info, ok, held, err
}

func (b *localBackend) ForceUnlock(_ context.Context, id string) error { return ForceUnlock(b.dir, id) }

// Workspaces: a state directory holds one campaign.
func (b *localBackend) Workspaces(context.Context) ([]string, error) {
	if _, err := os.Stat(b.path()); errors.Is(err, os.ErrNotExist) {
		return []string{}, nil
	}
	return []string{DefaultWorkspace}, nil
}

func (b *localBackend) Close() error {
	if b.fl != nil {
		fl := b.fl
		b.fl = nil
		return fl.Unlock()
	}
	return nil
}
