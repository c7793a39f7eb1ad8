package pgstate

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
)

// TestTakeSlotTakesOne: TakeSlot tries the free slots in one query and
// holds exactly the one it returns, whether all are free or only the
// last; with none free it holds nothing more. Counted in pg_locks.
func TestTakeSlotTakesOne(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	ws := pgtest.Workspace(t, cs)
	open := func() (*reconcile.Store, *Backend) {
		b, err := Open(cs, ws)
		if err != nil {
			t.Fatal(err)
		}
		s := reconcile.NewStore(b)
		t.Cleanup(func() { s.Close() })
		if _, err := s.LockSharedWait(t.Context(), "pass", 0, nil); err != nil {
			t.Fatal(err)
		}
		return s, b
	}
	x, _ := open()
	y, yb := open()
	z, _ := open()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	held := func(limit string) int {
		t.Helper()
		keys := make([]int64, 8)
		for i := range keys {
			keys[i] = slotKey(yb.campaign, limit, i)
		}
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted
			AND ((classid::bigint << 32) | objid::bigint) = ANY($1)`, keys).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	take := func(s *reconcile.Store, limit string) (int, bool) {
		t.Helper()
		slot, ok, err := s.TakeSlot(limit, 8)
		if err != nil {
			t.Fatal(err)
		}
		return slot, ok
	}
	if slot, ok := take(y, "source.a"); !ok || slot != 0 || held("source.a") != 1 {
		t.Fatalf("all 8 free: slot %d, %v, %d held; want slot 0 and one lock", slot, ok, held("source.a"))
	}
	for i := range 6 {
		if slot, ok := take(x, "source.b"); !ok || slot != i {
			t.Fatalf("take %d: slot %d, %v", i, slot, ok)
		}
	}
	if slot, ok := take(y, "source.b"); !ok || slot != 6 || held("source.b") != 7 {
		t.Fatalf("two of 8 free: slot %d, %v, %d held; want slot 6 and 7 locks in all", slot, ok, held("source.b"))
	}
	if slot, ok := take(y, "source.b"); !ok || slot != 7 || held("source.b") != 8 {
		t.Fatalf("the last free: slot %d, %v, %d held", slot, ok, held("source.b"))
	}
	if _, ok := take(z, "source.b"); ok || held("source.b") != 8 {
		t.Fatalf("none free: took one (%v), %d held", ok, held("source.b"))
	}
}
