package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// DefaultWorkspace names the campaign of a repo that names none: the only
// one of a state directory, and the default one in a database.
const DefaultWorkspace = "default"

// storeTimeout bounds one load, write or unlock. They are not given the
// caller's context: a state write must not be abandoned half-way because
// the run that records its last step was interrupted, nor the lock kept
// because the pass that releases it was.
const storeTimeout = time.Minute

// Store is the engine's state store: a Backend (the local directory, or
// PostgreSQL) with what every backend shares: the lock's holder record,
// the serial and lineage of each write, and the version of the state
// this process last read or wrote, which every write must follow.
// It is safe for concurrent use.
type Store struct {
	b     Backend
	local *localBackend // the directory backend; nil for others

	mu   sync.Mutex
	held *LockInfo // the lock this Store holds
	// heldShared says held is a shared hold (LockSharedWait): records
	// are written one by one, never the whole state.
	heldShared bool
	// base is the stored state as this Store last loaded or wrote it; a
	// write is refused unless the backend still holds it.
	base *Version
	// observe sees every state loaded or written (Observe);
	// observeRecord every record written alone (ObserveRecords).
	observe       func(*State)
	observeRecord func(lineage, addr string, ms *MigrationState)
}

// Observe makes fn see every state this Store loads or writes, right
// after the load or the write succeeded and before the caller goes on:
// the agent's notifications (agent/notify) derive transitions from it, so
// one a write records is queued before the step that wrote it continues.
// fn runs with the Store's lock held; it must not keep or change st, nor
// call the Store.
func (s *Store) Observe(fn func(st *State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observe = fn
}

// ObserveRecords makes fn see every record this Store writes alone
// (WriteRecord, a store shared by several processes), right after the
// write succeeded, as Observe does for whole states: the rest of the
// writer's state may be older than the store's, so only the record
// written is shown. ms is nil when the write deleted the record. fn runs
// with the Store's lock held; it must not keep or change ms, nor call the
// Store.
func (s *Store) ObserveRecords(fn func(lineage, addr string, ms *MigrationState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observeRecord = fn
}

// OpenStore returns the local store in dir, creating the directory (0700).
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	l := &localBackend{dir: dir}
	return &Store{b: l, local: l}, nil
}

// NewStore returns a store over another backend (pgstate.Open).
func NewStore(b Backend) *Store { return &Store{b: b} }

// String says where the state is (a directory, or a database workspace).
func (s *Store) String() string { return s.b.String() }

// Dir is the state directory of a local store; empty for other backends.
func (s *Store) Dir() string {
	if s.local == nil {
		return ""
	}
	return s.local.dir
}

// Path is the state file of a local store; empty for other backends.
func (s *Store) Path() string {
	if s.local == nil {
		return ""
	}
	return s.local.path()
}

// BackupPath is a local store's state as it was before the last write.
func (s *Store) BackupPath() string {
	if s.local == nil {
		return ""
	}
	return s.local.backupPath()
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

// Load reads the state; none stored yet is an empty state.
func (s *Store) Load() (*State, error) {
	ctx, cancel := opContext()
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.b.Load(ctx)
	if err != nil {
		return nil, err
	}
	v := VersionOf(st)
	s.base = &v
	if s.observe != nil {
		s.observe(st)
	}
	return st, nil
}

// LoadBackup reads the state as it was before the last write, where the
// backend keeps one.
func (s *Store) LoadBackup() (*State, error) {
	bk, ok := s.b.(Backupper)
	if !ok {
		return nil, fmt.Errorf("the state in %s keeps no backup of the state before the last write (state pull and state push -force copy a state instead)", s.b)
	}
	ctx, cancel := opContext()
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return bk.LoadBackup(ctx)
}

// Write bumps st.Serial (assigning a lineage on the first write) and
// stores st as one transaction (atomically, for the local backend). It
// is refused with a *ConflictError, and nothing written, unless the
// stored state is still the one this Store last loaded or wrote (or,
// when it did neither, the one st was made from). The caller must hold
// the lock.
func (s *Store) Write(st *State) error {
	ctx, cancel := opContext()
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		return errors.New("writing state: the state lock is not held")
	}
	if s.heldShared {
		return errors.New("writing state: a shared hold writes claimed records (WriteRecord), never the whole state")
	}
	base := VersionOf(st)
	if s.base != nil {
		base = *s.base
	}
	if st.Lineage == "" {
		st.Lineage = uuid.NewString()
	}
	st.FormatVersion = StateFormatVersion
	st.Serial++
	if err := s.b.Write(ctx, st, base); err != nil {
		st.Serial--
		return fmt.Errorf("writing state: %w", err)
	}
	v := VersionOf(st)
	s.base = &v
	if s.observe != nil {
		s.observe(st)
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

// Restore makes the backup the state again, keeping the state it replaces
// as the new backup. The serial goes on from the current state's (a
// saved plan made against either is stale), the lineage must match. A
// current state that does not decode is replaced. The caller holds the
// lock.
func (s *Store) Restore() (from, to uint64, err error) {
	old, err := s.LoadBackup()
	if err != nil {
		return 0, 0, err
	}
	from = old.Serial
	if cur, err := s.Load(); err == nil {
		if cur.Lineage != "" && old.Lineage != "" && cur.Lineage != old.Lineage {
			return 0, 0, fmt.Errorf("the backup is of another campaign (lineage %s, the state's is %s); not restored", old.Lineage, cur.Lineage)
		}
		old.Serial = max(old.Serial, cur.Serial)
	}
	if err := s.Write(old); err != nil {
		return 0, 0, err
	}
	return from, old.Serial, nil
}

// Workspaces lists the campaigns the backend stores.
func (s *Store) Workspaces(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Workspaces(ctx)
}

// Close releases the lock if this Store still holds it, and the
// backend's connections.
func (s *Store) Close() error {
	uerr := s.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(uerr, s.b.Close())
}
