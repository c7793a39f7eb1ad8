package reconcile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/google/uuid"
)

const (
	stateFile    = "state.json"
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

// Load reads the state; a missing file is an empty state.
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
		return nil, fmt.Errorf("%s: %w", s.Path(), err)
	}
	return st, nil
}

// Write bumps st.Serial (assigning a lineage on the first write) and
// replaces the state file atomically: temp file in the same directory,
// fsync, rename, fsync of the directory. The file is 0600. A process killed
// at any instant leaves either the old or the new state, never a mix.
// The caller must hold the lock.
func (s *Store) Write(st *State) error {
	if s.lock == nil {
		return errors.New("writing state: the state lock is not held")
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
	if err := writeFileAtomic(s.Path(), b); err != nil {
		st.Serial--
		return fmt.Errorf("writing state: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temp file in the same
// directory (fsynced before the rename) and makes the rename durable by
// syncing the directory. The file is 0600 whatever the umask and whatever
// mode a file it replaces had: state and plans may name paths and hosts
// that only their owner should read.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(0o600))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// WriteFileAtomic is writeFileAtomic for the CLI's saved plans: same
// guarantees, mode 0600.
func WriteFileAtomic(path string, data []byte) error { return writeFileAtomic(path, data) }
