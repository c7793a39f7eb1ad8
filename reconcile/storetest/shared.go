package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/reconcile"
)

// RunShared runs the suite of a backend several processes work on at
// once (reconcile.SharedBackend): shared holds beside an exclusive one,
// claims, per-record writes that never lose another's update, the
// converters' job limit and the limits' slots, all counted across
// stores (each store is another process's session).
func RunShared(t *testing.T, place Place) {
	tests := map[string]func(*testing.T, func() *reconcile.Store){
		"SharedAndExclusive":  testSharedAndExclusive,
		"Claims":              testClaims,
		"RecordWrites":        testRecordWrites,
		"JobLimit":            testJobLimit,
		"Slots":               testSlots,
		"SetLineage":          testSetLineage,
		"SetLineageFirst":     testSetLineageFirst,
		"ExclusiveNotKeptOut": testExclusiveNotKeptOut,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, place(t)) })
	}
}

func holdShared(t *testing.T, s *reconcile.Store, op string) reconcile.LockInfo {
	t.Helper()
	if !s.Shared() {
		t.Fatalf("the store over %s is not shared", s)
	}
	info, err := s.LockSharedWait(t.Context(), op, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// testSharedAndExclusive: passes hold the lock shared side by side; an
// exclusive holder waits for them all and names one; while it holds,
// a pass is refused naming it.
func testSharedAndExclusive(t *testing.T, open func() *reconcile.Store) {
	a, b, x := closeAtEnd(t, open()), closeAtEnd(t, open()), closeAtEnd(t, open())
	ia := holdShared(t, a, "agent pass 1")
	holdShared(t, b, "agent pass 4")
	_, err := x.Lock("state mv")
	var le *reconcile.LockedError
	if !errors.As(err, &le) || le.Info.ID != ia.ID || !strings.Contains(err.Error(), "agent pass 1") {
		t.Fatalf("exclusive lock beside two passes: %v; want a LockedError naming the oldest pass", err)
	}
	if err := a.Write(reconcile.NewState()); err == nil {
		t.Error("a shared hold wrote the whole state")
	}
	for _, s := range []*reconcile.Store{a, b} {
		if err := s.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	ix, err := x.Lock("state mv")
	if err != nil {
		t.Fatalf("exclusive lock once the passes ended: %v", err)
	}
	_, err = a.LockSharedWait(t.Context(), "agent pass 2", 0, nil)
	if !errors.As(err, &le) || le.Info.ID != ix.ID || le.Info.Operation != "state mv" {
		t.Fatalf("a pass beside an exclusive holder: %v; want a LockedError naming it", err)
	}
	if got, ok, held, err := a.Holder(t.Context()); err != nil || !ok || !held || got.ID != ix.ID {
		t.Errorf("Holder = %+v, %v, %v, %v; want the exclusive holder", got, ok, held, err)
	}
	if err := x.Unlock(); err != nil {
		t.Fatal(err)
	}
	// force-unlock breaks a shared hold too, naming its ID.
	ib := holdShared(t, b, "agent pass 5")
	if err := x.ForceUnlock(t.Context(), ib.ID); err != nil {
		t.Fatalf("force-unlock of a shared hold: %v", err)
	}
	if _, err := x.Lock("state rm"); err != nil {
		t.Fatalf("exclusive lock after the shared holder was forced out: %v", err)
	}
}

// testClaims: a migration is one process's at a time; another is told
// who has it; a release or the end of the holder's session frees it.
func testClaims(t *testing.T, open func() *reconcile.Store) {
	a, b := closeAtEnd(t, open()), open()
	holdShared(t, a, "agent pass 3")
	holdShared(t, b, "apply")
	if err := a.Claim("migration.x"); err != nil {
		t.Fatal(err)
	}
	if err := a.Claim("migration.x"); err == nil {
		t.Error("a process claimed what it claims already")
	}
	err := b.Claim("migration.x")
	var ce *reconcile.ClaimedError
	if !errors.As(err, &ce) || ce.Holder.Operation != "agent pass 3" || !strings.Contains(err.Error(), "migration.x is being worked on by agent pass 3") {
		t.Fatalf("claim of a claimed migration: %v; want a ClaimedError naming the pass", err)
	}
	if err := b.Claim("migration.y"); err != nil {
		t.Fatalf("a disjoint claim: %v", err)
	}
	if err := a.Release("migration.x"); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim("migration.x"); err != nil {
		t.Fatalf("claim after the release: %v", err)
	}
	// b's process ends: its session, and all it claimed, go (once the
	// server has ended it, which it does after the client left).
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"migration.x", "migration.y"} {
		var err error
		soon(t, func() bool { err = a.Claim(m); return err == nil })
		if err != nil {
			t.Fatalf("claim of %s after its holder's session ended: %v", m, err)
		}
	}
}

// soon retries cond for up to 5 s: what a server does after a client
// leaves (ending its session) is not done when the client's Close
// returns.
func soon(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
}

// testRecordWrites: two processes write disjoint records at once, in
// any interleaving, and neither loses the other's: the whole state
// loaded after holds every last write, the serial moved once per
// write. A record written by another since this process read it is
// refused naming both versions.
func testRecordWrites(t *testing.T, open func() *reconcile.Store) {
	const rounds = 10
	stores := []*reconcile.Store{closeAtEnd(t, open()), closeAtEnd(t, open())}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	sts := make([]*reconcile.State, len(stores))
	for i, s := range stores {
		holdShared(t, s, fmt.Sprintf("pass %d", i))
		st, err := s.Load()
		if err != nil {
			t.Fatal(err)
		}
		st.Lineage = "9f0c0a52-0000-4000-8000-00000000000a"
		sts[i] = st
	}
	for i, s := range stores {
		st := sts[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				for _, m := range []string{"a", "b"} {
					addr := fmt.Sprintf("migration.p%d%s", i, m)
					if r == 0 {
						if errs[i] = s.Claim(addr); errs[i] != nil {
							return
						}
						st.Migrations[addr] = record(addr)
					}
					st.Migrations[addr].Attempts = r + 1
					if errs[i] = s.WriteRecord(st, addr, 0); errs[i] != nil {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := closeAtEnd(t, open()).Load()
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != 2*2*rounds || len(got.Migrations) != 4 {
		t.Fatalf("after %d record writes: serial %d, %d records; want serial %d and 4 records", 4*rounds, got.Serial, len(got.Migrations), 4*rounds)
	}
	for addr, ms := range got.Migrations {
		want := record(addr)
		want.Attempts = rounds
		if d := cmp.Diff(want, ms); d != "" {
			t.Errorf("%s lost an update (-want +got):\n%s", addr, d)
		}
	}
	// Store 1 writes p0a behind store 0's back (it never read it).
	a, b := stores[0], stores[1]
	stale := got.Clone()
	if err := b.Claim("migration.p0a"); err == nil {
		t.Fatal("claimed a migration another process holds")
	}
	err = b.WriteRecord(stale, "migration.p0a", 0)
	var ce *reconcile.ConflictError
	if !errors.As(err, &ce) || ce.Address != "migration.p0a" || !strings.Contains(err.Error(), "record of migration.p0a") {
		t.Fatalf("a write of a record not read: %v; want a ConflictError naming it", err)
	}
	// A record another process wrote since shows as moved; once read,
	// it can be written.
	st, err := b.Load()
	if err != nil {
		t.Fatal(err)
	}
	st.Migrations["migration.p0a"].Attempts = 99
	// The record observer (the agent's notifications) sees the record
	// written, and only it.
	type seenRecord struct {
		lineage, addr string
		attempts      int
		deleted       bool
	}
	var seen []seenRecord
	observe := func(lineage, addr string, ms *reconcile.MigrationState) {
		r := seenRecord{lineage: lineage, addr: addr, deleted: ms == nil}
		if ms != nil {
			r.attempts = ms.Attempts
		}
		seen = append(seen, r)
	}
	a.ObserveRecords(observe)
	b.ObserveRecords(observe)
	if err := a.WriteRecord(st, "migration.p0a", 0); err != nil {
		t.Fatal(err)
	}
	if want := []seenRecord{{st.Lineage, "migration.p0a", 99, false}}; !slices.Equal(seen, want) {
		t.Fatalf("record observer saw %+v, want %+v", seen, want)
	}
	ms, moved, err := b.LoadRecord("migration.p0a")
	if err != nil || !moved || ms.Attempts != 99 {
		t.Fatalf("LoadRecord after another's write = %+v, moved %v, %v; want moved, attempts 99", ms, moved, err)
	}
	if _, moved, err := b.LoadRecord("migration.p0a"); err != nil || moved {
		t.Fatalf("LoadRecord again = moved %v, %v; want not moved", moved, err)
	}
	st.Migrations["migration.p0a"] = ms
	delete(st.Migrations, "migration.p1b")
	if err := b.WriteRecord(st, "migration.p1b", 0); err != nil {
		t.Fatalf("deleting a record: %v", err)
	}
	if len(seen) != 2 || seen[1] != (seenRecord{st.Lineage, "migration.p1b", 0, true}) {
		t.Fatalf("record observer saw %+v, want the delete of migration.p1b second", seen)
	}
	got, err = closeAtEnd(t, open()).Load()
	if err != nil || got.Migrations["migration.p1b"] != nil || got.Migrations["migration.p0a"].Attempts != 99 || got.Lineage != st.Lineage {
		t.Fatalf("after the delete: %+v, %v", got, err)
	}
	// A write for another campaign is refused.
	other := got.Clone()
	other.Lineage = "another"
	if err := b.WriteRecord(other, "migration.p1a", 0); !errors.As(err, &ce) {
		t.Fatalf("a write for another campaign: %v; want a ConflictError", err)
	}
}

// testJobLimit: a converter's jobs in flight are counted from the
// records of every process, and a write that would exceed the limit is
// refused and writes nothing; a job seen to end frees its slot.
func testJobLimit(t *testing.T, open func() *reconcile.Store) {
	const conv = "converter.w.main"
	a, b := closeAtEnd(t, open()), closeAtEnd(t, open())
	sts := map[*reconcile.Store]*reconcile.State{}
	for _, s := range []*reconcile.Store{a, b} {
		holdShared(t, s, "pass")
		st, err := s.Load()
		if err != nil {
			t.Fatal(err)
		}
		st.Lineage = "9f0c0a52-0000-4000-8000-00000000000b"
		sts[s] = st
	}
	submit := func(s *reconcile.Store, addr string) error {
		t.Helper()
		st := sts[s]
		if st.Migrations[addr] == nil {
			if err := s.Claim(addr); err != nil {
				t.Fatal(err)
			}
			st.Migrations[addr] = record(addr)
		}
		st.Migrations[addr].Job = &reconcile.JobRecord{Converter: conv, ID: addr + "-a1", Attempt: 1}
		return s.WriteRecord(st, addr, 2)
	}
	for _, c := range []struct {
		s    *reconcile.Store
		addr string
	}{{a, "migration.a1"}, {b, "migration.b1"}} {
		if err := submit(c.s, c.addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := submit(a, "migration.a2"); !errors.Is(err, reconcile.ErrJobLimit) {
		t.Fatalf("a third job on a converter limited to 2: %v; want ErrJobLimit", err)
	}
	if st, err := closeAtEnd(t, open()).Load(); err != nil || st.Migrations["migration.a2"] != nil {
		t.Fatalf("the refused write stored %+v, %v", st.Migrations["migration.a2"], err)
	}
	// Rewriting a record that holds a slot already is within the limit.
	sts[b].Migrations["migration.b1"].Job.State = "queued"
	if err := b.WriteRecord(sts[b], "migration.b1", 2); err != nil {
		t.Fatalf("rewriting a job in flight: %v", err)
	}
	sts[b].Migrations["migration.b1"].Job.State = "succeeded"
	if err := b.WriteRecord(sts[b], "migration.b1", 0); err != nil {
		t.Fatal(err)
	}
	if err := submit(a, "migration.a2"); err != nil {
		t.Fatalf("a job once another ended: %v", err)
	}
}

// testSlots: a limit's slots are counted across processes, and a
// process that ends gives its slots back.
func testSlots(t *testing.T, open func() *reconcile.Store) {
	a, b, c := open(), closeAtEnd(t, open()), closeAtEnd(t, open())
	defer a.Close()
	for _, s := range []*reconcile.Store{a, b, c} {
		holdShared(t, s, "pass")
	}
	const limit = "source.files.nas"
	sa, ok, err := a.TakeSlot(limit, 2)
	if err != nil || !ok {
		t.Fatalf("first slot: %v, %v", ok, err)
	}
	sb, ok, err := b.TakeSlot(limit, 2)
	if err != nil || !ok || sb == sa {
		t.Fatalf("second slot: %d (first %d), %v, %v", sb, sa, ok, err)
	}
	if _, ok, err := c.TakeSlot(limit, 2); err != nil || ok {
		t.Fatalf("a third slot of 2: %v, %v; want none", ok, err)
	}
	if _, ok, err := c.TakeSlot("target.libvirt.kvm", 1); err != nil || !ok {
		t.Fatalf("another limit's slot: %v, %v", ok, err)
	}
	if err := b.GiveSlot(limit, sb); err != nil {
		t.Fatal(err)
	}
	sc, ok, err := c.TakeSlot(limit, 2)
	if err != nil || !ok || sc != sb {
		t.Fatalf("slot after one was given back: %d, %v, %v; want %d", sc, ok, err, sb)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var got int
	soon(t, func() bool { got, ok, err = b.TakeSlot(limit, 2); return ok || err != nil })
	if err != nil || !ok || got != sa {
		t.Fatalf("slot after its holder's session ended: %d, %v, %v; want %d", got, ok, err, sa)
	}
}

// testSetLineage: processes starting on a campaign never written agree
// on one lineage, the first given, also when they give theirs at once.
func testSetLineage(t *testing.T, open func() *reconcile.Store) {
	racers := make([]*reconcile.Store, 4)
	got := make([]string, len(racers))
	errs := make([]error, len(racers))
	var wg sync.WaitGroup
	for i := range racers {
		racers[i] = closeAtEnd(t, open())
		holdShared(t, racers[i], "apply")
	}
	for i, s := range racers {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = s.SetLineage(fmt.Sprintf("lineage-%d", i)) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, l := range got {
		if l != got[0] || !strings.HasPrefix(l, "lineage-") {
			t.Fatalf("lineages given at once: %v; want one of them, the same for all", got)
		}
	}
	for _, s := range racers {
		_ = s.Unlock()
	}
	t.Run("sequential", func(t *testing.T) { testSetLineageInTurn(t, open) })
}

func testSetLineageInTurn(t *testing.T, open func() *reconcile.Store) {
	ws := open() // the same workspace: its lineage is given already
	defer ws.Close()
	holdShared(t, ws, "apply")
	if l, err := ws.SetLineage("lineage-late"); err != nil || !strings.HasPrefix(l, "lineage-") || l == "lineage-late" {
		t.Fatalf("SetLineage on a campaign with a lineage = %q, %v; want the one it has", l, err)
	}
}

// testSetLineageFirst: the first process's lineage is the campaign's.
func testSetLineageFirst(t *testing.T, open func() *reconcile.Store) {
	a, b := closeAtEnd(t, open()), closeAtEnd(t, open())
	holdShared(t, a, "apply")
	holdShared(t, b, "apply")
	la, err := a.SetLineage("lineage-a")
	if err != nil || la != "lineage-a" {
		t.Fatalf("SetLineage on a new campaign = %q, %v", la, err)
	}
	if lb, err := b.SetLineage("lineage-b"); err != nil || lb != "lineage-a" {
		t.Fatalf("SetLineage by a second process = %q, %v; want the first's", lb, err)
	}
	st, err := b.Load()
	if err != nil || st.Lineage != "lineage-a" || st.Serial != 1 || len(st.Migrations) != 0 {
		t.Fatalf("state after SetLineage: %+v, %v", st, err)
	}
}

// testExclusiveNotKeptOut: passes that come and go so that one always
// holds the lock shared do not keep an exclusive holder out: it waits its
// turn, and while it waits and holds, passes are refused.
func testExclusiveNotKeptOut(t *testing.T, open func() *reconcile.Store) {
	passes := []*reconcile.Store{closeAtEnd(t, open()), closeAtEnd(t, open())}
	x := closeAtEnd(t, open())
	stop := make(chan struct{})
	var refused atomic.Int64
	var wg sync.WaitGroup
	for i, s := range passes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 40 * time.Millisecond)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.LockSharedWait(t.Context(), fmt.Sprintf("agent pass of host %d", i), 0, nil); err != nil {
					refused.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				time.Sleep(80 * time.Millisecond)
				_ = s.Unlock()
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(200 * time.Millisecond)
	var waited []string
	info, err := x.LockWait(t.Context(), "state mv", 10*time.Second, func(h reconcile.LockInfo, _ time.Duration) {
		waited = append(waited, h.Operation)
	})
	if err != nil {
		t.Fatalf("an exclusive lock beside passes always holding it shared: %v", err)
	}
	before := refused.Load()
	time.Sleep(200 * time.Millisecond)
	if refused.Load() == before {
		t.Error("passes were not refused while the exclusive lock was held")
	}
	if got, ok, held, err := x.Holder(t.Context()); err != nil || !ok || !held || got.ID != info.ID {
		t.Errorf("Holder = %+v, %v, %v, %v; want the exclusive holder", got, ok, held, err)
	}
	if len(waited) == 0 || !strings.HasPrefix(waited[0], "agent pass of host") {
		t.Errorf("waited for %v, want a pass named", waited)
	}
}
