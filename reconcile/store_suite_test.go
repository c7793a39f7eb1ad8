package reconcile_test

import (
	"testing"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/storetest"
)

// TestLocalStore runs the store suite on the local directory backend;
// pgstate runs the same suite on PostgreSQL.
func TestLocalStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() *reconcile.Store {
		dir := t.TempDir()
		return func() *reconcile.Store {
			s, err := reconcile.OpenStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
