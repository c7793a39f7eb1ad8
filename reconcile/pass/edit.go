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
			ms = reconcile.NewRecord(st, addr, now)
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

// Move gives the record of from the address to (a migration block was
// renamed). It is refused when to is in the state already, or from is
// not. The record keeps the identity its artifacts were named after and
// are owned by (its Origin: from, or where from was moved from), so that
// plans for to find them its own.
func Move(st *reconcile.State, from, to string, now time.Time) error {
	ms := st.Migrations[from]
	switch {
	case from == to:
		return fmt.Errorf("%s and %s are the same address", from, to)
	case ms == nil:
		return fmt.Errorf("%s is not in the state; nothing was moved", from)
	case st.Migrations[to] != nil:
		return fmt.Errorf("%s is in the state already; nothing was moved (state rm it first if it is to go)", to)
	}
	delete(st.Migrations, from)
	ms.Origin = ms.Identity()
	ms.Address, ms.UpdatedAt = to, now
	if ms.Origin == to {
		ms.Origin = "" // moved back where its artifacts were made
	}
	st.Migrations[to] = ms
	return nil
}

// Push makes st, the stored state loaded under the lock, the pushed one.
// It is refused when pushed is of another campaign (lineage) or older
// (serial) than st, unless force. The serial goes on from the higher of
// the two, so that a saved plan made against either is stale.
func Push(st, pushed *reconcile.State, force bool) error {
	if !force {
		if st.Lineage != "" && pushed.Lineage != st.Lineage {
			return fmt.Errorf("the pushed state is of campaign %q and the stored one of campaign %q; nothing was pushed (-force replaces it)", pushed.Lineage, st.Lineage)
		}
		if pushed.Serial < st.Serial {
			return fmt.Errorf("the pushed state is at serial %d, older than the stored serial %d; nothing was pushed (-force replaces it)", pushed.Serial, st.Serial)
		}
	}
	serial := max(st.Serial, pushed.Serial)
	*st = *pushed.Clone()
	st.Serial = serial
	return nil
}
