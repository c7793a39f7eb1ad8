package pgstate_test

import (
	"os"
	"testing"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pgstate"
	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
	"github.com/hypersdk/hyperagent/reconcile/storetest"
)

// TestPGStore runs the store suite reconcile runs on the local backend,
// each test in a workspace of its own of the tests' database.
func TestPGStore(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	storetest.Run(t, func(t *testing.T) func() *reconcile.Store {
		ws := pgtest.Workspace(t, cs)
		return func() *reconcile.Store { return pgStore(t, cs, ws) }
	})
}

// TestPGStoreShared runs the suite of backends several processes share.
func TestPGStoreShared(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	storetest.RunShared(t, func(t *testing.T) func() *reconcile.Store {
		ws := pgtest.Workspace(t, cs)
		return func() *reconcile.Store { return pgStore(t, cs, ws) }
	})
}

func pgStore(t testing.TB, cs, ws string) *reconcile.Store {
	t.Helper()
	s, err := pgstate.NewStore(cs, ws)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
