package reconcile

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

// TestUpdateReturnsOnceWritten: updates from many goroutines at once
// (steps ending together) share writes, and each returns only once a
// write that holds its change has succeeded: the last state written,
// seen through Observe, already has the migration's change. Fewer writes
// than updates shows that they were shared.
func TestUpdateReturnsOnceWritten(t *testing.T) {
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Lock("test"); err != nil {
		t.Fatal(err)
	}
	defer store.Unlock()
	const n, rounds = 16, 20
	st := NewState()
	for i := range n {
		a := fmt.Sprintf("migration.m%d", i)
		st.Migrations[a] = &MigrationState{Address: a}
	}
	var mu sync.Mutex
	var last map[string]int // attempts in the last state written, by address
	writes := 0
	store.Observe(func(w *State) {
		m := map[string]int{}
		for a, ms := range w.Migrations {
			m[a] = ms.Attempts
		}
		mu.Lock()
		last, writes = m, writes+1
		mu.Unlock()
	})
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
				mu.Lock()
				got := last[a]
				mu.Unlock()
				if got < k {
					t.Errorf("%s: update %d returned while the last state written holds %d", a, k, got)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d updates, %d writes", n*rounds, writes)
	if writes > n*rounds {
		t.Errorf("%d writes for %d updates", writes, n*rounds)
	}
}
