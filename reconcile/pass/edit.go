package pass

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Edit changes the state under the lock, waiting up to timeout for
// another holder: `state rm`, `agent suspend` and `resume`. fn changes st;
// the state is written once, after it returns without error.
func Edit(ctx context.Context, store *reconcile.Store, op string, timeout time.Duration, fn func(st *reconcile.State) error) (err error) {
	if _, err := store.LockWait(ctx, op, timeout, nil); err != nil {
		return err
	}
	defer func() {
		if uerr := store.Unlock(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	st, err := store.Load()
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	return store.Write(st)
}

// Suspend holds migrations (all of them with all) so that no step of
// theirs runs, in this process or any other, until Resume. Addresses
// must name instances the configuration or the state knows (known).
func Suspend(st *reconcile.State, list []addrs.Migration, all bool, known func(string) bool, now time.Time) error {
	if all {
		st.SuspendedAll = &now
		return nil
	}
	for _, a := range list {
		addr := a.String()
		if !known(addr) {
			return fmt.Errorf("%s is neither in the configuration nor in the state", addr)
		}
		ms := st.Migrations[addr]
		if ms == nil {
			ms = &reconcile.MigrationState{Address: addr, CreatedAt: now}
			st.Migrations[addr] = ms
		}
		t := now
		ms.Suspended, ms.UpdatedAt = &t, now
	}
	return nil
}

// Resume lets held migrations go on; with all it clears the hold on every
// migration as well as the campaign-wide one.
func Resume(st *reconcile.State, list []addrs.Migration, all bool, now time.Time) error {
	if all {
		st.SuspendedAll = nil
		for _, ms := range st.Migrations {
			ms.Suspended = nil
		}
		return nil
	}
	if st.SuspendedAll != nil {
		return errors.New("the whole campaign is suspended: resume it with -all")
	}
	for _, a := range list {
		ms := st.Migrations[a.String()]
		if ms == nil || ms.Suspended == nil {
			return fmt.Errorf("%s is not suspended", a)
		}
		ms.Suspended, ms.UpdatedAt = nil, now
	}
	return nil
}
