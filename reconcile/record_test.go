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
			store, err := OpenStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Lock("test"); err != nil {
				t.Fatal(err)
			}
			defer store.Unlock()
			var observedWrites atomic.Int64
			if observed {
				store.Observe(func(*State) { observedWrites.Add(1) })
			}
			const n, rounds = 16, 20
			st := NewState()
			for i := range n {
				a := fmt.Sprintf("migration.m%d", i)
				st.Migrations[a] = &MigrationState{Address: a}
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
