package reconcile

import (
	"context"
	"fmt"
)

// Backend is where a campaign's state lives and how its lock is held.
// A Store drives one: it owns the serial, the lineage and the lock's
// bookkeeping; the backend stores and locks. Two implement it: the local
// directory (OpenStore, the default) and PostgreSQL (package
// reconcile/pgstate). A Backend is used by one Store; it is not safe for
// concurrent use (the Store serialises its calls).
type Backend interface {
	// String says where the state is, for messages: a directory, or a
	// database's workspace. It never holds a secret.
	String() string
	// Load reads the state; none stored yet is an empty state.
	Load(ctx context.Context) (*State, error)
	// Write stores st as one transaction. It is refused with a
	// *ConflictError, writing nothing, unless the stored state is base
	// (the one the writer loaded or last wrote): two writers can never
	// interleave. The caller holds the lock.
	Write(ctx context.Context, st *State, base Version) error
	// Lock takes the campaign's lock for info's holder without waiting,
	// or returns a *LockedError naming the holder.
	Lock(ctx context.Context, info LockInfo) error
	// Unlock releases the lock Lock took for info.
	Unlock(ctx context.Context, info LockInfo) error
	// Holder says who the lock's record names (ok false: nobody) and
	// whether a live process holds the lock now (a record left by a
	// process that died names a holder that holds nothing).
	Holder(ctx context.Context) (info LockInfo, ok, held bool, err error)
	// ForceUnlock breaks the lock whose record names id.
	ForceUnlock(ctx context.Context, id string) error
	// Workspaces lists the campaigns the backend stores, sorted.
	Workspaces(ctx context.Context) ([]string, error)
	// Close releases connections; a lock still held is released.
	Close() error
}

// Version identifies a state as a writer saw it: its campaign and serial.
// The zero Version is "no state stored yet".
type Version struct {
	Lineage string
	Serial  uint64
}

// VersionOf is the version of st.
func VersionOf(st *State) Version { return Version{Lineage: st.Lineage, Serial: st.Serial} }

func (v Version) String() string {
	if v.Lineage == "" {
		return fmt.Sprintf("serial %d", v.Serial)
	}
	return fmt.Sprintf("serial %d of campaign %s", v.Serial, v.Lineage)
}

// Follows says whether a write based on base may replace v, the stored
// state: the same serial, and the same campaign when both have one (a
// state not written yet has none; a writer may give it one).
func (v Version) Follows(base Version) bool {
	return v.Serial == base.Serial && (v.Lineage == "" || base.Lineage == "" || v.Lineage == base.Lineage)
}

// ConflictError is a write refused because the stored state is not the
// one the writer read: another process wrote since. Nothing was written.
type ConflictError struct {
	Where  string
	Stored Version // what the backend holds
	Base   Version // what the refused write follows
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the state in %s was written by another process since this one read it: it is at %s, and this write follows %s; nothing was written (run again to start from the stored state)",
		e.Where, e.Stored, e.Base)
}

// Backupper is a backend that keeps the state as it was before the last
// write (the local one: state.json.backup).
type Backupper interface {
	LoadBackup(ctx context.Context) (*State, error)
}
