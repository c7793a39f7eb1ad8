package reconcile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins/plugintest"
)

func TestLockNamesHolderAndForceUnlock(t *testing.T) {
	dir := t.TempDir()
	a, _ := OpenStore(dir)
	b, _ := OpenStore(dir)
	info, err := a.Lock("apply")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Lock("state rm")
	var le *LockedError
	if !errors.As(err, &le) || le.Info.ID != info.ID || le.Info.Operation != "apply" || le.Info.PID != os.Getpid() {
		t.Fatalf("second lock: %v, want a LockedError naming %+v", err, info)
	}
	if !strings.Contains(err.Error(), "force-unlock "+info.ID) {
		t.Errorf("error %q does not say how to unlock", err)
	}
	if held, err := LockHeld(dir); err != nil || !held {
		t.Errorf("LockHeld while held = %v, %v", held, err)
	}
	if err := ForceUnlock(dir, "wrong"); err == nil {
		t.Error("force-unlock with a wrong id succeeded")
	}
	if err := ForceUnlock(dir, info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock("state rm"); err != nil {
		t.Fatalf("lock after force-unlock: %v", err)
	}
	// a's lock is on a removed file now; releasing it must not remove b's info.
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := ReadLockInfo(dir); !ok || got.Operation != "state rm" {
		t.Errorf("lock info after the old holder unlocked = %+v, %v", got, ok)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ReadLockInfo(dir); ok {
		t.Error("lock info left after unlock")
	}
	if held, err := LockHeld(dir); err != nil || held {
		t.Errorf("LockHeld after unlock = %v, %v", held, err)
	}
}

func TestWriteNeedsLockAndIsAtomic(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenStore(dir)
	st := NewState()
	if err := s.Write(st); err == nil {
		t.Fatal("write without the lock succeeded")
	}
	if _, err := s.Lock("test"); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock()
	for i := 1; i <= 3; i++ {
		if err := s.Write(st); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load()
		if err != nil {
			t.Fatal(err)
		}
		if got.Serial != uint64(i) || got.Lineage != st.Lineage {
			t.Errorf("write %d: serial %d lineage %q", i, got.Serial, got.Lineage)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(`{"format_version": 9}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); err == nil || !strings.Contains(err.Error(), "format_version 9") {
		t.Errorf("loading a future format: %v", err)
	}
}

func TestSavedPlanStaleness(t *testing.T) {
	tests := map[string]struct {
		move func(h *harness)
		want string
	}{
		"fresh": {func(h *harness) {}, ""},
		"config": {func(h *harness) { h.migration("a").Domain.VCPUs = 8; h.rehash() },
			"the configuration changed"},
		"state": {func(h *harness) { h.writeState(h.state()) }, "the state was written since (serial 0 → 1)"},
		"vm": {func(h *harness) { h.src.SetVM(h.migration("b").VM, plugintest.VM{Fingerprint: "v9"}) },
			"the source VM of migration.b changed (fingerprint v1 → v9)"},
		"vm gone": {func(h *harness) { h.src.SetVM(h.migration("a").VM, vmMissing) },
			"the source VM of migration.a (/DC1/vm/a) is gone"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "", "a", "b")
			p := h.plan(PlanRequest{})
			b, err := p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			saved, err := DecodePlan(b)
			if err != nil {
				t.Fatal(err)
			}
			tc.move(h)
			err = CheckStale(context.Background(), saved, h.cfg, h.state(), h.set)
			var se *StaleError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("fresh plan reported stale: %v", err)
			case tc.want != "" && (!errors.As(err, &se) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want a StaleError naming %q", err, tc.want)
			}
		})
	}
}

// TestWritesAre0600: state, lock info and saved plans are 0600 even when
// the umask is permissive and a file they replace was world-readable.
// TestObserveSeesLoadsAndWrites: the hook sees every state loaded or
// written, after the write, with its new serial; a refused write is not
// seen.
func TestObserveSeesLoadsAndWrites(t *testing.T) {
	s, _ := OpenStore(t.TempDir())
	var seen []uint64
	s.Observe(func(st *State) { seen = append(seen, st.Serial) })
	if _, err := s.Lock("test"); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Write(st); err != nil {
			t.Fatal(err)
		}
	}
	// Another writer moves the file on: this Store's next write is refused.
	other := st.Clone()
	other.Serial = 7
	b, err := other.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(s.Path(), b); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(st); err == nil {
		t.Fatal("a write that does not follow the stored state succeeded")
	}
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{0, 1, 2, 7}; !slices.Equal(seen, want) {
		t.Errorf("observed serials %v, want %v", seen, want)
	}
}

func TestWritesAre0600(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	s, _ := OpenStore(dir)
	if err := os.WriteFile(s.Path(), []byte(`{"format_version": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock("apply"); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock()
	if err := s.Write(NewState()); err != nil {
		t.Fatal(err)
	}
	plan := filepath.Join(dir, "saved.plan")
	if err := os.WriteFile(plan, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(plan, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.Path(), filepath.Join(dir, lockInfoFile), plan} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

func TestLockWait(t *testing.T) {
	dir := t.TempDir()
	holder, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Lock("agent pass 7"); err != nil {
		t.Fatal(err)
	}
	waiter, _ := OpenStore(dir)
	ctx := context.Background()

	// 0s: one try, the error names the holder and its operation.
	_, err = waiter.LockWait(ctx, "apply", 0, nil)
	var le *LockedError
	if !errors.As(err, &le) || le.Info.Operation != "agent pass 7" || !strings.Contains(err.Error(), "agent pass 7") {
		t.Fatalf("err = %v, want a LockedError naming the agent", err)
	}

	// A timeout: waits, reporting whom it waits for, then gives up.
	var waits int
	start := time.Now()
	_, err = waiter.LockWait(ctx, "apply", 600*time.Millisecond, func(li LockInfo, _ time.Duration) {
		if li.Operation == "agent pass 7" {
			waits++
		}
	})
	if !errors.As(err, &le) || waits < 2 || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("err = %v after %v with %d waits; want a LockedError after waiting", err, time.Since(start), waits)
	}

	// Released during the wait: taken.
	released := make(chan struct{})
	go func() { time.Sleep(300 * time.Millisecond); holder.Unlock(); close(released) }()
	info, err := waiter.LockWait(ctx, "apply", 10*time.Second, nil)
	if err != nil || info.Operation != "apply" {
		t.Fatalf("LockWait = %+v, %v; want the lock once released", info, err)
	}
	waiter.Unlock()
	<-released

	// A cancelled context ends the wait at once.
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

// TestBackupAndRestore: every write keeps the state it replaces; a state
// that does not decode names the backup; restore puts it back (going on
// from the serial), and the replaced state becomes the backup.
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock("test"); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock()
	st := NewState()
	st.Migrations["migration.a"] = &MigrationState{Address: "migration.a"}
	if err := s.Write(st); err != nil { // serial 1, no backup yet
		t.Fatal(err)
	}
	if _, err := os.Stat(s.BackupPath()); !os.IsNotExist(err) {
		t.Fatalf("a backup before any earlier state: %v", err)
	}
	st.Migrations["migration.b"] = &MigrationState{Address: "migration.b"}
	if err := s.Write(st); err != nil { // serial 2, backup = serial 1
		t.Fatal(err)
	}
	b, err := s.LoadBackup()
	if err != nil || b.Serial != 1 || len(b.Migrations) != 1 {
		t.Fatalf("backup %+v, %v; want serial 1 with one migration", b, err)
	}
	if err := os.WriteFile(s.Path(), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); err == nil || !strings.Contains(err.Error(), s.BackupPath()) || !strings.Contains(err.Error(), "state restore") {
		t.Fatalf("Load of a broken state: %v, want it to name the backup", err)
	}
	from, to, err := s.Restore()
	if err != nil || from != 1 || to != 2 {
		t.Fatalf("Restore = %d, %d, %v", from, to, err)
	}
	back, err := s.Load()
	if err != nil || len(back.Migrations) != 1 || back.Serial != 2 {
		t.Fatalf("restored state %+v, %v", back, err)
	}
}

// TestWriteAfterForceUnlock: a holder whose lock was broken writes nothing.
func TestWriteAfterForceUnlock(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Lock("hung apply")
	if err != nil {
		t.Fatal(err)
	}
	if err := ForceUnlock(dir, info.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(NewState()); err == nil || !strings.Contains(err.Error(), "lock was broken") {
		t.Fatalf("Write after force-unlock: %v, want a refusal", err)
	}
	if _, err := os.Stat(s.Path()); !os.IsNotExist(err) {
		t.Error("the state was written anyway")
	}
}
