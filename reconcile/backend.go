package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
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
	Where string
	// Address is set when one record's write was refused (a
	// SharedBackend): the versions are then that record's.
	Address string
	Stored  Version // what the backend holds
	Base    Version // what the refused write follows
}

func (e *ConflictError) Error() string {
	if e.Address != "" {
		return fmt.Sprintf("the record of %s in %s was written by another process since this one read it: it is at %s, and this write follows %s; nothing was written",
			e.Address, e.Where, e.Stored, e.Base)
	}
	return fmt.Sprintf("the state in %s was written by another process since this one read it: it is at %s, and this write follows %s; nothing was written (run again to start from the stored state)",
		e.Where, e.Stored, e.Base)
}

// Backupper is a backend that keeps the state as it was before the last
// write (the local one: state.json.backup).
type Backupper interface {
	LoadBackup(ctx context.Context) (*State, error)
}

// QueueLocker is a backend whose exclusive lock queues its waiters
// (PostgreSQL): a waiter keeps new holders, shared ones too, from
// getting in before it. LockWait waits that way on it.
type QueueLocker interface {
	// LockQueued waits up to timeout for the exclusive lock, then
	// returns a *LockedError naming a holder.
	LockQueued(ctx context.Context, info LockInfo, timeout time.Duration) error
}

// SharedBackend is a backend on which several processes, on several
// hosts, work on one campaign at once (PostgreSQL). A pass holds the
// campaign's lock shared (LockShared): other passes may hold it too, and
// an exclusive holder (Lock: state rm, mv, push, suspend, resume)
// excludes them all. Within a pass, a process works on a migration only
// while it claims it; it writes only records it claims, one at a time
// (WriteRecord), each refused unless the stored record is the one it
// last read or wrote, so writers of different records never lose each
// other's updates. Claims and slots live as long as the process's
// session with the backend: a process that dies loses them.
type SharedBackend interface {
	Backend
	// LockShared takes the campaign's lock shared, without waiting, or
	// returns a *LockedError naming the exclusive holder. Unlock
	// releases it.
	LockShared(ctx context.Context, info LockInfo) error
	// SetLineage gives a campaign that has none the lineage, and
	// returns the campaign's lineage (the one given, or the one another
	// process gave first).
	SetLineage(ctx context.Context, lineage string) (string, error)
	// Claim makes addr this process's until Release or the end of its
	// session, or returns a *ClaimedError naming the holder. holder is
	// the pass's lock record, shown to others.
	Claim(ctx context.Context, addr string, holder LockInfo) error
	// Release gives a claimed migration back.
	Release(ctx context.Context, addr string) error
	// LoadRecord reads one record as stored now (nil: none); moved says
	// it is not the version this process last read or wrote.
	LoadRecord(ctx context.Context, addr string) (ms *MigrationState, moved bool, err error)
	// WriteRecord stores one record as one transaction and moves the
	// campaign's serial, which it returns.
	WriteRecord(ctx context.Context, w RecordWrite) (serial uint64, err error)
	// TakeSlot takes one of the n slots of a limit (a source's exports,
	// a target's definitions) for this process; ok is false when all n
	// are taken, by any process.
	TakeSlot(ctx context.Context, limit string, n int) (slot int, ok bool, err error)
	// GiveSlot gives a slot TakeSlot took back.
	GiveSlot(ctx context.Context, limit string, slot int) error
	// Ping says whether the session holding the claims and slots is
	// still there; an error means they are lost.
	Ping(ctx context.Context) error
}

// RecordWrite is one record's write on a SharedBackend.
type RecordWrite struct {
	// Lineage is the campaign the writer works on; a write to another
	// campaign is refused. A campaign with none yet takes it.
	Lineage string
	Address string
	// Record is the record to store; nil deletes it.
	Record *MigrationState
	// JobLimit, when positive, refuses the write with ErrJobLimit if
	// Record's job would hold a slot of its converter (JobSlot) while
	// JobLimit other records hold one already: the converter's limit,
	// counted in the backend across every process.
	JobLimit int
}

// ErrJobLimit is a record write refused because its converter has as
// many jobs in flight as its limit allows; nothing was written.
var ErrJobLimit = errors.New("the converter has as many jobs in flight as its limit allows")

// ClaimedError is a migration another process is working on.
type ClaimedError struct {
	Address string
	Holder  LockInfo // zero when the holder's record was not found
}

func (e *ClaimedError) Error() string {
	if e.Holder.ID == "" {
		return fmt.Sprintf("%s is being worked on by another process", e.Address)
	}
	return fmt.Sprintf("%s is being worked on by %s by pid %d on %s since %s", e.Address, e.Holder.Operation, e.Holder.PID,
		e.Holder.Host, e.Holder.Since.UTC().Format(time.RFC3339))
}

// JobSlot is the converter whose limit the record's job holds a slot
// of, "" when none: a job recorded (its submission intended or done) and
// not seen to end. A converter's jobs in flight are the records holding
// its slot, whichever process submitted them and whether or not it still
// runs: its conversion goes on without it.
func (ms *MigrationState) JobSlot() string {
	if ms == nil || ms.Job == nil {
		return ""
	}
	switch ms.Job.State {
	case "", plugins.JobQueued, plugins.JobProcessing:
		return ms.Job.Converter
	}
	return ""
}
