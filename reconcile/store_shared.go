package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Shared says whether the store's backend lets several processes work
// on the campaign at once (a SharedBackend): passes then hold the lock
// shared and claim each migration they work on.
func (s *Store) Shared() bool {
	_, ok := s.b.(SharedBackend)
	return ok
}

// HeldShared says this store holds the lock shared (LockSharedWait).
func (s *Store) HeldShared() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held != nil && s.heldShared
}

// shared returns the backend of a store held shared, or an error.
func (s *Store) shared() (SharedBackend, error) {
	sb, ok := s.b.(SharedBackend)
	switch {
	case !ok:
		return nil, fmt.Errorf("the state in %s cannot be worked on by several processes at once", s.b)
	case s.held == nil || !s.heldShared:
		return nil, errors.New("the state lock is not held shared")
	}
	return sb, nil
}

// withShared runs fn on the backend of a store held shared, under the
// store's mutex, with a context bounded as every state operation's.
func (s *Store) withShared(fn func(ctx context.Context, sb SharedBackend) error) error {
	ctx, cancel := opContext()
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, err := s.shared()
	if err != nil {
		return err
	}
	return fn(ctx, sb)
}

// SetLineage gives the campaign the lineage when it has none yet, and
// returns its lineage: the one given, or one another process gave
// first. Every process then names artifacts after the same campaign.
// The caller holds the lock shared.
func (s *Store) SetLineage(lineage string) (got string, err error) {
	err = s.withShared(func(ctx context.Context, sb SharedBackend) (err error) {
		got, err = sb.SetLineage(ctx, lineage)
		return err
	})
	return got, err
}

// Claim makes addr this process's until Release, or until the process
// (its session with the backend) ends; another holder is a
// *ClaimedError. The caller holds the lock shared.
func (s *Store) Claim(addr string) error {
	return s.withShared(func(ctx context.Context, sb SharedBackend) error { return sb.Claim(ctx, addr, *s.held) })
}

// Release gives a claimed migration back.
func (s *Store) Release(addr string) error {
	return s.withShared(func(ctx context.Context, sb SharedBackend) error { return sb.Release(ctx, addr) })
}

// LoadRecord reads one record as stored now (nil: none); moved says
// another process wrote it since this one last read or wrote it.
func (s *Store) LoadRecord(addr string) (ms *MigrationState, moved bool, err error) {
	err = s.withShared(func(ctx context.Context, sb SharedBackend) (err error) {
		ms, moved, err = sb.LoadRecord(ctx, addr)
		return err
	})
	return ms, moved, err
}

// WriteRecord stores the record of addr in st (deleting it when st has
// none) as one transaction, refused with a *ConflictError unless the
// stored record is the one this process last read or wrote, and with
// ErrJobLimit (when jobLimit is positive) while the record's converter
// has that many other jobs in flight. st.Serial becomes the campaign's
// serial after the write. The caller holds the lock shared and the
// claim of addr.
func (s *Store) WriteRecord(st *State, addr string, jobLimit int) error {
	err := s.withShared(func(ctx context.Context, sb SharedBackend) error {
		serial, err := sb.WriteRecord(ctx, RecordWrite{Lineage: st.Lineage, Address: addr, Record: st.Migrations[addr], JobLimit: jobLimit})
		if err != nil {
			return err
		}
		st.FormatVersion, st.Serial = StateFormatVersion, serial
		if s.observeRecord != nil {
			s.observeRecord(st.Lineage, addr, st.Migrations[addr])
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrJobLimit) {
		return fmt.Errorf("writing the record of %s: %w", addr, err)
	}
	return err
}

// TakeSlot takes one of the n slots of limit, counted across every
// process working on the campaign; ok is false when none is free.
func (s *Store) TakeSlot(limit string, n int) (slot int, ok bool, err error) {
	err = s.withShared(func(ctx context.Context, sb SharedBackend) (err error) {
		slot, ok, err = sb.TakeSlot(ctx, limit, n)
		return err
	})
	return slot, ok, err
}

// GiveSlot gives back a slot TakeSlot took.
func (s *Store) GiveSlot(limit string, slot int) error {
	return s.withShared(func(ctx context.Context, sb SharedBackend) error { return sb.GiveSlot(ctx, limit, slot) })
}

// Ping checks that the session holding this process's claims and slots
// is still there, giving the server up to timeout to answer; an error
// means they are lost (a server not answering in time ends the session
// from this side too), and the work done under them must stop. It is not
// given the caller's context: a run being interrupted must not end the
// session whose claims it still records its interruption under.
func (s *Store) Ping(timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, err := s.shared()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return sb.Ping(ctx)
}
