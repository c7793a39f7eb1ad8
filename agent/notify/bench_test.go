package notify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// BenchmarkState10k is what notifications add to each state write of a
// campaign of 10,000 defined migrations: "unchanged" looks for news and
// finds none (most writes); "one migrated" also queues an event and
// writes the ledger (fsynced files, as in production); "state write" is
// the local store's write of that state, for scale.
func BenchmarkState10k(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	st := reconcile.NewState()
	st.Lineage = campaign
	for i := range 10_000 {
		a := fmt.Sprintf("migration.vm[\"%05d\"]", i)
		st.Migrations[a] = &reconcile.MigrationState{Address: a, UpdatedAt: t0}
		define(st, a, t0)
	}
	n := New(Options{})
	n.Configure(b.TempDir(), []*schema.Webhook{hook("ops", srv.URL)})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); n.Wait() }()
	n.Start(ctx)
	n.State(st) // the baseline
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			n.State(st)
		}
	})
	b.Run("state write", func(b *testing.B) {
		store, err := reconcile.OpenStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := store.Lock("bench"); err != nil {
			b.Fatal(err)
		}
		defer store.Unlock()
		w := st.Clone()
		for b.Loop() {
			if err := store.Write(w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one migrated", func(b *testing.B) {
		at := t0
		for b.Loop() {
			at = at.Add(time.Second)
			define(st, `migration.vm["00042"]`, at)
			n.State(st)
		}
	})
}
