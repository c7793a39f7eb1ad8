// Package storetest is the state store's test suite, run against every
// backend: the local directory (reconcile's tests) and PostgreSQL
// (pgstate's); and the suite of backends several processes share
// (RunShared: PostgreSQL's). It imports reconcile, go-cmp and the
// standard library only.
package storetest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/reconcile"
)

// Place makes a new, empty place for one campaign's state (a directory,
// a database workspace) and returns how to open a Store on it; each call
// of open is another process's Store.
type Place func(t *testing.T) (open func() *reconcile.Store)

// Run runs the suite.
func Run(t *testing.T, place Place) {
	tests := map[string]func(*testing.T, func() *reconcile.Store){
		"EmptyLoad":                  testEmptyLoad,
		"LockNamesHolderForceUnlock": testLockNamesHolderAndForceUnlock,
		"WriteNeedsLockSerial":       testWriteNeedsLockAndSerial,
		"LockWait":                   testLockWait,
		"ConflictNamesBoth":          testConflictNamesBoth,
		"RecordsRoundTrip":           testRecordsRoundTrip,
		"Workspaces":                 testWorkspaces,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, place(t)) })
	}
}

func closeAtEnd(t *testing.T, s *reconcile.Store) *reconcile.Store {
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testEmptyLoad(t *testing.T, open func() *reconcile.Store) {
	st, err := closeAtEnd(t, open()).Load()
	if err != nil || st.Serial != 0 || st.Lineage != "" || len(st.Migrations) != 0 {
		t.Fatalf("Load of nothing = %+v, %v; want an empty state", st, err)
	}
}

func testLockNamesHolderAndForceUnlock(t *testing.T, open func() *reconcile.Store) {
	ctx := context.Background()
	a, b := closeAtEnd(t, open()), closeAtEnd(t, open())
	info, err := a.Lock("apply")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Lock("state rm")
	var le *reconcile.LockedError
	if !errors.As(err, &le) || le.Info.ID != info.ID || le.Info.Operation != "apply" || le.Info.PID != os.Getpid() {
		t.Fatalf("second lock: %v, want a LockedError naming %+v", err, info)
	}
	if !strings.Contains(err.Error(), "force-unlock "+info.ID) || !strings.Contains(err.Error(), "apply by pid") {
		t.Errorf("error %q does not name the holder and how to unlock", err)
	}
	if got, ok, held, err := b.Holder(ctx); err != nil || !ok || !held || got.ID != info.ID {
		t.Errorf("Holder while held = %+v, %v, %v, %v", got, ok, held, err)
	}
	if err := b.ForceUnlock(ctx, "wrong"); err == nil {
		t.Error("force-unlock with a wrong id succeeded")
	}
	if err := b.ForceUnlock(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock("state rm"); err != nil {
		t.Fatalf("lock after force-unlock: %v", err)
	}
	// a's hold was broken: it writes nothing, and releasing it must not
	// remove b's record.
	if err := a.Write(reconcile.NewState()); err == nil {
		t.Error("the holder whose lock was broken could still write")
	}
	_ = a.Unlock()
	if got, ok, held, _ := b.Holder(ctx); !ok || !held || got.Operation != "state rm" {
		t.Errorf("holder after the old holder unlocked = %+v, %v, %v", got, ok, held)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got, ok, held, err := b.Holder(ctx); err != nil || ok || held {
		t.Errorf("holder after unlock = %+v, %v, %v, %v", got, ok, held, err)
	}
	if st, err := b.Load(); err != nil || st.Serial != 0 {
		t.Errorf("state after a broken holder's write = %+v, %v; want none written", st, err)
	}
}

func testWriteNeedsLockAndSerial(t *testing.T, open func() *reconcile.Store) {
	s := closeAtEnd(t, open())
	st := reconcile.NewState()
	if err := s.Write(st); err == nil {
		t.Fatal("write without the lock succeeded")
	}
	if _, err := s.Lock("test"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := s.Write(st); err != nil {
			t.Fatal(err)
		}
		got, err := closeAtEnd(t, open()).Load()
		if err != nil {
			t.Fatal(err)
		}
		if got.Serial != uint64(i) || got.Lineage != st.Lineage || st.Lineage == "" {
			t.Errorf("write %d: serial %d lineage %q (wrote %q)", i, got.Serial, got.Lineage, st.Lineage)
		}
	}
	if err := s.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func testLockWait(t *testing.T, open func() *reconcile.Store) {
	holder, waiter := closeAtEnd(t, open()), closeAtEnd(t, open())
	if _, err := holder.Lock("agent pass 7"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := waiter.LockWait(ctx, "apply", 0, nil)
	var le *reconcile.LockedError
	if !errors.As(err, &le) || le.Info.Operation != "agent pass 7" || !strings.Contains(err.Error(), "agent pass 7") {
		t.Fatalf("err = %v, want a LockedError naming the agent", err)
	}
	var waits int
	start := time.Now()
	_, err = waiter.LockWait(ctx, "apply", 600*time.Millisecond, func(li reconcile.LockInfo, _ time.Duration) {
		if li.Operation == "agent pass 7" {
			waits++
		}
	})
	// A backend that queues waiters (reconcile.QueueLocker) waits once;
	// the others try again after each pause.
	if !errors.As(err, &le) || waits < 1 || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("err = %v after %v with %d waits; want a LockedError after waiting", err, time.Since(start), waits)
	}
	released := make(chan error, 1)
	go func() { time.Sleep(300 * time.Millisecond); released <- holder.Unlock() }()
	info, err := waiter.LockWait(ctx, "apply", 10*time.Second, nil)
	if err != nil || info.Operation != "apply" {
		t.Fatalf("LockWait = %+v, %v; want the lock once released", info, err)
	}
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if err := waiter.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Lock("agent pass 8"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	start = time.Now()
	if _, err := waiter.LockWait(cctx, "apply", time.Hour, nil); !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v, want context.Canceled promptly", err, time.Since(start))
	}
}

// testConflictNamesBoth: b read the state, then a wrote it; b's write,
// even under the lock, is refused naming both serials, and writes
// nothing.
func testConflictNamesBoth(t *testing.T, open func() *reconcile.Store) {
	a, b := closeAtEnd(t, open()), closeAtEnd(t, open())
	write(t, a, func(st *reconcile.State) { st.Migrations["migration.a"] = record("migration.a") })
	old, err := b.Load()
	if err != nil {
		t.Fatal(err)
	}
	write(t, a, func(st *reconcile.State) { st.Migrations["migration.won"] = record("migration.won") })
	if _, err := b.Lock("apply"); err != nil {
		t.Fatal(err)
	}
	defer b.Unlock()
	old.Migrations["migration.lost"] = record("migration.lost")
	err = b.Write(old)
	var ce *reconcile.ConflictError
	if !errors.As(err, &ce) || ce.Stored.Serial != 2 || ce.Base.Serial != 1 ||
		!strings.Contains(err.Error(), "serial 2") || !strings.Contains(err.Error(), "serial 1") {
		t.Fatalf("the stale write: %v; want a ConflictError naming serial 2 stored and serial 1 read", err)
	}
	got, err := closeAtEnd(t, open()).Load()
	if err != nil || got.Serial != 2 || got.Migrations["migration.lost"] != nil || got.Migrations["migration.won"] == nil {
		t.Fatalf("after the refused write: %+v, %v; want the winner's serial 2", got, err)
	}
}

// testRecordsRoundTrip: what is written is what another process loads,
// field for field, after adding, changing and removing records, and
// after a write by a store that never loaded.
func testRecordsRoundTrip(t *testing.T, open func() *reconcile.Store) {
	a := closeAtEnd(t, open())
	now := time.Date(2026, 12, 1, 15, 4, 5, 123456789, time.UTC)
	want := write(t, a, func(st *reconcile.State) {
		st.SuspendedAll = &now
		for _, n := range []string{"migration.a", `migration.web["x"]`, "migration.c"} {
			st.Migrations[n] = record(n)
		}
		st.Migrations["migration.a"].Suspended = &now
	})
	check := func(want *reconcile.State) {
		t.Helper()
		got, err := closeAtEnd(t, open()).Load()
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("loaded state differs from the written one (-written +loaded):\n%s", d)
		}
	}
	check(want)
	want = write(t, a, func(st *reconcile.State) {
		delete(st.Migrations, "migration.c")
		st.Migrations["migration.a"].Job = &reconcile.JobRecord{Converter: "converter.x.y", ID: "j-1", Attempt: 1}
		st.Migrations["migration.d"] = record("migration.d")
		st.SuspendedAll = nil
	})
	check(want)
	// A store that never loaded writes the whole state it is given.
	c := closeAtEnd(t, open())
	if _, err := c.Lock("state push"); err != nil {
		t.Fatal(err)
	}
	pushed := want.Clone()
	delete(pushed.Migrations, "migration.d")
	if err := c.Write(pushed); err != nil {
		t.Fatal(err)
	}
	if err := c.Unlock(); err != nil {
		t.Fatal(err)
	}
	check(pushed)
}

func testWorkspaces(t *testing.T, open func() *reconcile.Store) {
	s := closeAtEnd(t, open())
	before, err := s.Workspaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, func(*reconcile.State) {})
	after, err := s.Workspaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)+1 {
		t.Errorf("workspaces %v before the first write, %v after; want one more", before, after)
	}
}

// write locks, loads, changes and writes the state, and returns it.
func write(t *testing.T, s *reconcile.Store, fn func(*reconcile.State)) *reconcile.State {
	t.Helper()
	if _, err := s.Lock("test"); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	fn(st)
	if err := s.Write(st); err != nil {
		t.Fatal(err)
	}
	return st.Clone()
}

func record(addr string) *reconcile.MigrationState {
	at := time.Date(2026, 11, 30, 10, 0, 0, 987654321, time.UTC)
	return &reconcile.MigrationState{Address: addr, Source: "source.fake.src", Converter: "converter.fake.conv",
		Target: "target.fake.kvm", VM: "/DC1/vm/" + addr, Fingerprint: "v1", ExportStartedAt: &at,
		Digests: reconcile.StepDigests{Export: "e1"}, CreatedAt: at, UpdatedAt: at}
}
