package reconcile

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

// TestUpdateReturnsOnceWritten: updates from many goroutines at once
// (steps ending together) share writes, and each returns only once a
// write that holds its change has succeeded: the state file on disk,
// read right after update returns, already has the migration's change;
// the serial counts the writes, fewer than the updates; with an
// observer (the agent's notifications), it sees every write.
func TestUpdateReturnsOnceWritten(t *testing.T) {
	for _, observed := range []bool{false, true} {
		t.Run(fmt.Sprintf("observed=%v", observed), func(t *testing.T) {
			const n, rounds = 16, 20
			store, st := lockedStoreWith(t, n)
			var observedWrites atomic.Int64
			if observed {
				store.Observe(func(*State) { observedWrites.Add(1) })
			}
			r := newRun(&Engine{Store: store, Plugins: &plugins.Set{}, Now: time.Now}, st, &Plan{}, ApplyOptions{})
			var wg sync.WaitGroup
			for i := range n {
				a := fmt.Sprintf("migration.m%d", i)
				wg.Go(func() {
					for k := 1; k <= rounds; k++ {
						if err := r.update(a, func(ms *MigrationState) { ms.Attempts = k }); err != nil {
							t.Error(err)
							return
						}
						data, err := os.ReadFile(store.Path())
						if err != nil {
							t.Error(err)
							return
						}
						disk, err := DecodeState(data)
						if err != nil {
							t.Error(err)
							return
						}
						if got := disk.Migrations[a].Attempts; got < k {
							t.Errorf("%s: update %d returned while the state on disk holds %d", a, k, got)
							return
						}
					}
				})
			}
			wg.Wait()
			final, err := store.Load()
			if err != nil {
				t.Fatal(err)
			}
			for a, ms := range final.Migrations {
				if ms.Attempts != rounds {
					t.Errorf("%s: %d in the final state, want %d", a, ms.Attempts, rounds)
				}
			}
			t.Logf("%d updates, %d writes", n*rounds, final.Serial)
			if got := uint64(observedWrites.Load()) - 1; observed && got != final.Serial { // and the Load
				t.Errorf("%d writes observed, serial %d", got, final.Serial)
			}
			if final.Serial >= n*rounds || final.Serial != r.st.Serial {
				t.Errorf("serial %d on disk, %d in the run, for %d updates", final.Serial, r.st.Serial, n*rounds)
			}
		})
	}
}

// TestUpdatesQueueDuringAWrite: while one write is under way (held here
// in the store's observer, which runs inside the write), the changes of
// other migrations are queued without waiting for it, and the next write
// holds all of them: eight updates, two writes.
func TestUpdatesQueueDuringAWrite(t *testing.T) {
	const n = 8
	store, st := lockedStoreWith(t, n)
	hold, release := make(chan struct{}), make(chan struct{})
	var writes atomic.Int64
	store.Observe(func(*State) {
		if writes.Add(1) == 1 {
			close(hold)
			<-release
		}
	})
	r := newRun(&Engine{Store: store, Plugins: &plugins.Set{}, Now: time.Now}, st, &Plan{}, ApplyOptions{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.update("migration.m0", func(ms *MigrationState) { ms.Attempts = 1 }); err != nil {
			t.Error(err)
		}
	})
	<-hold // the first write is under way
	for i := 1; i < n; i++ {
		a := fmt.Sprintf("migration.m%d", i)
		wg.Go(func() {
			if err := r.update(a, func(ms *MigrationState) { ms.Attempts = 1 }); err != nil {
				t.Error(err)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		r.queueMu.Lock()
		queued := r.queued
		r.queueMu.Unlock()
		if queued == n {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			wg.Wait()
			t.Fatalf("%d of %d changes queued while a write was under way: they waited for it", queued, n)
		}
	}
	close(release)
	wg.Wait()
	final, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	for a, ms := range final.Migrations {
		if ms.Attempts != 1 {
			t.Errorf("%s: not written", a)
		}
	}
	if final.Serial != 2 {
		t.Errorf("serial %d: want 2 writes for %d updates, the second holding the seven queued during the first", final.Serial, n)
	}
}

// lockedStoreWith opens a local store in a temporary directory, holds its
// lock until the test ends, and returns it with a state of n records,
// migration.m0 to m<n-1>.
func lockedStoreWith(t *testing.T, n int) (*Store, *State) {
	t.Helper()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Lock("test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Unlock() })
	st := NewState()
	for i := range n {
		a := fmt.Sprintf("migration.m%d", i)
		st.Migrations[a] = &MigrationState{Address: a}
	}
	return store, st
}
