package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/gofrs/flock"
	"github.com/google/uuid"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// LockInfo names the holder of the state lock. It is written next to the
// lock file so that "locked" errors and force-unlock can say who holds it.
type LockInfo struct {
	ID        string    `json:"id"`
	Operation string    `json:"operation"` // apply, state rm, agent …
	PID       int       `json:"pid"`
	Host      string    `json:"host"`
	Since     time.Time `json:"since"`
}

func (i LockInfo) String() string {
	return fmt.Sprintf("ID %s, %s by pid %d on %s since %s", i.ID, i.Operation, i.PID, i.Host, i.Since.UTC().Format(time.RFC3339))
}

// LockedError is returned when another process holds the state lock.
type LockedError struct {
	// Dir says where the state is: its directory, or for PostgreSQL
	// the database workspace (Backend.String).
	Dir  string
	Info LockInfo // zero when the holder wrote no info
	// Session is set when the lock lives in a database session: the
	// server drops it when its process dies, so only a stuck holder
	// ever needs force-unlock.
	Session bool
}

func (e *LockedError) Error() string {
	switch {
	case e.Info.ID == "":
		return fmt.Sprintf("the state in %s is locked by another process", e.Dir)
	case e.Session:
		return fmt.Sprintf("the state in %s is locked (%s); a process that dies loses the lock with its database session; if that one is stuck, run: hyperagent force-unlock %s", e.Dir, e.Info, e.Info.ID)
	}
	return fmt.Sprintf("the state in %s is locked (%s); if that process is gone, run: hyperagent force-unlock %s", e.Dir, e.Info, e.Info.ID)
}

// Lock takes the state lock for op, or returns a *LockedError naming the
// holder. A holder that dies loses the lock (the kernel drops a flock,
// the database server a session), so a stale holder record left by a
// killed process is simply replaced.
func (s *Store) Lock(op string) (LockInfo, error) {
	ctx, cancel := opContext()
	defer cancel()
	return s.lock(ctx, op, false)
}

func (s *Store) lock(ctx context.Context, op string, shared bool) (LockInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		return LockInfo{}, errors.New("the state lock is already held by this process")
	}
	host, _ := os.Hostname()
	info := LockInfo{ID: uuid.NewString(), Operation: op, PID: os.Getpid(), Host: host, Since: time.Now().UTC()}
	if shared {
		sb, ok := s.b.(SharedBackend)
		if !ok {
			return LockInfo{}, fmt.Errorf("the state in %s cannot be worked on by several processes at once", s.b)
		}
		if err := sb.LockShared(ctx, info); err != nil {
			return LockInfo{}, err
		}
	} else if err := s.b.Lock(ctx, info); err != nil {
		return LockInfo{}, err
	}
	s.held, s.heldShared = &info, shared
	return info, nil
}

// Unlock releases the lock this Store holds (nothing when none).
func (s *Store) Unlock() error {
	ctx, cancel := opContext()
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		return nil
	}
	info := *s.held
	s.held, s.heldShared = nil, false
	if err := s.b.Unlock(ctx, info); err != nil {
		return fmt.Errorf("unlocking state: %w", err)
	}
	return nil
}

// Holder says who the lock's record names (ok false: nobody), and
// whether a live process holds the lock (held false: the record is
// stale, its process died).
func (s *Store) Holder(ctx context.Context) (info LockInfo, ok, held bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Holder(ctx)
}

// ForceUnlock breaks the lock whose record names id: the local backend
// removes the lock file, PostgreSQL ends the holder's session. Use it
// only when the holder is known to be stuck.
func (s *Store) ForceUnlock(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.ForceUnlock(ctx, id)
}

// ReadLockInfo reads the holder's info; ok is false when there is none.
func ReadLockInfo(dir string) (info LockInfo, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, lockInfoFile))
	if errors.Is(err, os.ErrNotExist) {
		return LockInfo{}, false, nil
	}
	if err != nil {
		return LockInfo{}, false, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return LockInfo{}, false, fmt.Errorf("lock info: %w", err)
	}
	return info, true, nil
}

// LockHeld says whether some process holds the state lock now. Lock info
// left by a process that died (SIGKILL, a second interrupt) names a holder
// that no longer holds anything; this tells the two apart. It takes the
// lock for an instant when it is free.
func LockHeld(dir string) (bool, error) {
	path := filepath.Join(dir, lockFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	fl := flock.New(path)
	ok, err := fl.TryLock()
	if err != nil {
		return false, fmt.Errorf("checking the state lock: %w", err)
	}
	if ok {
		_ = fl.Unlock()
	}
	return !ok, nil
}

// lockQueued takes the exclusive lock of a backend that queues its
// waiters: it tries once, and while another holds the lock, waits its
// turn in the backend's queue (telling waiting whom for), so that passes
// coming and going beside each other cannot keep it out for ever.
func (s *Store) lockQueued(ctx context.Context, op string, timeout time.Duration, waiting func(LockInfo, time.Duration)) (LockInfo, error) {
	info, err := s.lock(ctx, op, false)
	var le *LockedError
	if !errors.As(err, &le) {
		return info, err
	}
	if waiting != nil {
		waiting(le.Info, timeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		return LockInfo{}, errors.New("the state lock is already held by this process")
	}
	host, _ := os.Hostname()
	info = LockInfo{ID: uuid.NewString(), Operation: op, PID: os.Getpid(), Host: host, Since: time.Now().UTC()}
	if err := s.b.(QueueLocker).LockQueued(ctx, info, timeout); err != nil {
		return LockInfo{}, err
	}
	s.held, s.heldShared = &info, false
	return info, nil
}

// ForceUnlock breaks the lock whose info names id. When the holder is
// alive (a hung process), the lock file is removed, so the next Lock takes
// a new file; the holder keeps a lock on nothing. Use it only when the
// holder is known to be stuck.
func ForceUnlock(dir, id string) error {
	info, ok, err := ReadLockInfo(dir)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the state in %s is not locked", dir)
	}
	if info.ID != id {
		return fmt.Errorf("lock ID %q does not match the held lock (%s)", id, info)
	}
	for _, f := range []string{lockFile, lockInfoFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("force-unlock: %w", err)
		}
	}
	return fsutil.SyncDir(dir)
}

// LockWait takes the lock for op like Lock, but while another process
// holds it, tries again with capped exponential backoff (100 ms growing to
// 2 s) for up to timeout; 0 tries once, as Terraform's -lock-timeout=0s.
// ctx ends the wait early. After the timeout the *LockedError names the
// holder; the wait is reported to waiting (may be nil) each time it
// starts a pause, so a view can say whom it waits for.
func (s *Store) LockWait(ctx context.Context, op string, timeout time.Duration, waiting func(LockInfo, time.Duration)) (LockInfo, error) {
	return s.lockWait(ctx, op, false, timeout, waiting)
}

// LockSharedWait is LockWait for a pass on a SharedBackend: it takes the
// campaign's lock shared with other passes, on this host or others, and
// waits only while an exclusive holder (state rm, mv, push, suspend,
// resume) has it.
func (s *Store) LockSharedWait(ctx context.Context, op string, timeout time.Duration, waiting func(LockInfo, time.Duration)) (LockInfo, error) {
	return s.lockWait(ctx, op, true, timeout, waiting)
}

func (s *Store) lockWait(ctx context.Context, op string, shared bool, timeout time.Duration, waiting func(LockInfo, time.Duration)) (LockInfo, error) {
	if timeout <= 0 {
		return s.lock(ctx, op, shared)
	}
	if _, ok := s.b.(QueueLocker); ok && !shared {
		return s.lockQueued(ctx, op, timeout, waiting)
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.Multiplier = 100*time.Millisecond, 2*time.Second, 2
	return backoff.Retry(ctx, func() (LockInfo, error) {
		info, err := s.lock(ctx, op, shared)
		var le *LockedError
		if err != nil && !errors.As(err, &le) {
			return info, backoff.Permanent(err)
		}
		return info, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(timeout), backoff.WithNotify(func(err error, next time.Duration) {
		var le *LockedError
		if waiting != nil && errors.As(err, &le) {
			waiting(le.Info, next)
		}
	}))
}
