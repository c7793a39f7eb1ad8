package reconcile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

const (
	stateFile    = "state.json"
	backupFile   = "state.json.backup"
	lockFile     = "state.lock"
	lockInfoFile = "state.lock.info"
)

// Store is the local state store: one JSON file in the state directory,
// replaced atomically on every write, guarded by a lock (lock.go).
type Store struct {
	dir  string
	lock *heldLock
}

// OpenStore returns the store in dir, creating the directory (0700).
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Path is the state file.
func (s *Store) Path() string { return filepath.Join(s.dir, stateFile) }

// BackupPath is the state as it was before the last write.
func (s *Store) BackupPath() string { return filepath.Join(s.dir, backupFile) }

// Load reads the state; a missing file is an empty state. A state that
// does not decode names its backup.
func (s *Store) Load() (*State, error) {
	b, err := os.ReadFile(s.Path())
	if errors.Is(err, os.ErrNotExist) {
		return NewState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	st, err := DecodeState(b)
	if err != nil {
		if _, berr := os.Stat(s.BackupPath()); berr == nil {
			return nil, fmt.Errorf("%s: %w; the state before the last write is in %s (hyperagent state restore puts it back)", s.Path(), err, s.BackupPath())
		}
		return nil, fmt.Errorf("%s: %w", s.Path(), err)
	}
	return st, nil
}

// LoadBackup reads the state as it was before the last write.
func (s *Store) LoadBackup() (*State, error) {
	b, err := os.ReadFile(s.BackupPath())
	if err != nil {
		return nil, fmt.Errorf("reading the state's backup: %w", err)
	}
	st, err := DecodeState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.BackupPath(), err)
	}
	return st, nil
}

// Write bumps st.Serial (assigning a lineage on the first write) and
// replaces the state file atomically: temp file in the same directory,
// fsync, rename, fsync of the directory. The file is 0600. A process killed
// at any instant leaves either the old or the new state, never a mix.
// The state it replaces is kept as the backup first: a hard link to the
// old file (which the rename leaves untouched), so keeping it costs no
// copy. The caller must hold the lock.
func (s *Store) Write(st *State) error {
	if s.lock == nil {
		return errors.New("writing state: the state lock is not held")
	}
	// force-unlock removes the lock file: a holder still running after
	// that holds a lock on nothing, and must not write.
	if same, err := lockedFileIsCurrent(s.lock.fl, filepath.Join(s.dir, lockFile)); err != nil || !same {
		return fmt.Errorf("writing state: the state lock was broken (hyperagent force-unlock?) while this process held it; nothing was written")
	}
	if st.Lineage == "" {
		st.Lineage = uuid.NewString()
	}
	st.FormatVersion = StateFormatVersion
	st.Serial++
	b, err := st.Encode()
	if err != nil {
		st.Serial--
		return err
	}
	if err := s.keepBackup(); err != nil {
		st.Serial--
		return fmt.Errorf("writing state: keeping the backup: %w", err)
	}
	if err := WriteFileAtomic(s.Path(), b); err != nil {
		st.Serial--
		return fmt.Errorf("writing state: %w", err)
	}
	return nil
}

// WriteFileAtomic writes state, lock records and saved plans: atomically
// and durably (fsutil.WriteFileAtomic), and 0600 whatever the umask and
// whatever mode a replaced file had, since they may name paths and hosts
// only their owner should read.
func WriteFileAtomic(path string, data []byte) error {
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

// keepBackup makes the current state file the backup: a link under a
// temporary name renamed over the old backup, so the backup too is
// replaced atomically; where the filesystem has no hard links, a copy
// written atomically. No state file yet means no backup to keep.
func (s *Store) keepBackup() error {
	tmp := s.BackupPath() + ".tmp"
	_ = os.Remove(tmp) // left by a process killed here
	err := os.Link(s.Path(), tmp)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err == nil:
		return os.Rename(tmp, s.BackupPath())
	}
	b, rerr := os.ReadFile(s.Path())
	if errors.Is(rerr, os.ErrNotExist) {
		return nil
	}
	if rerr != nil {
		return errors.Join(err, rerr)
	}
	return WriteFileAtomic(s.BackupPath(), b)
}

// Restore makes the backup the state again, keeping the state it replaces
// as the new backup. The serial goes on from the current state's (a
// saved plan made against either is stale), the lineage must match. The
// caller holds the lock.
func (s *Store) Restore() (from, to uint64, err error) {
	old, err := s.LoadBackup()
	if err != nil {
		return 0, 0, err
	}
	from = old.Serial
	b, err := os.ReadFile(s.Path())
	if err == nil {
		if cur, derr := DecodeState(b); derr == nil {
			if cur.Lineage != "" && old.Lineage != "" && cur.Lineage != old.Lineage {
				return 0, 0, fmt.Errorf("the backup is of another campaign (lineage %s, the state's is %s); not restored", old.Lineage, cur.Lineage)
			}
			old.Serial = max(old.Serial, cur.Serial)
		}
	}
	if err := s.Write(old); err != nil {
		return 0, 0, err
	}
	return from, old.Serial, nil
}
