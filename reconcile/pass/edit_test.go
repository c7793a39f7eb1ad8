package pass

import (
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// TestMoveKeepsIdentity: a record moved keeps the identity its artifacts
// were made under, through any number of moves, and loses the origin
// once moved back to it; a record made for an address a moved record's
// artifacts use gets an identity of its own.
func TestMoveKeepsIdentity(t *testing.T) {
	now := time.Now().UTC()
	st := reconcile.NewState()
	st.Migrations["migration.a"] = &reconcile.MigrationState{Address: "migration.a"}
	for _, mv := range [][2]string{{"migration.a", "migration.b"}, {"migration.b", "migration.c"}} {
		if err := Move(st, mv[0], mv[1], now); err != nil {
			t.Fatal(err)
		}
	}
	if ms := st.Migrations["migration.c"]; ms == nil || ms.Origin != "migration.a" || ms.Identity() != "migration.a" {
		t.Fatalf("after a → b → c: %+v; want its identity migration.a", ms)
	}
	if id := reconcile.IdentityFor(st, "migration.a"); id != "migration.a#2" {
		t.Errorf("identity of a new migration.a = %q, want migration.a#2", id)
	}
	if err := Suspend(st, []addrs.Migration{{Name: "a"}}, false, func(string) bool { return true }, now); err != nil {
		t.Fatal(err)
	}
	if ms := st.Migrations["migration.a"]; ms == nil || ms.Identity() != "migration.a#2" {
		t.Fatalf("record suspend made for migration.a: %+v; want identity migration.a#2", ms)
	}
	if id := reconcile.IdentityFor(st, "migration.d"); id != "migration.d" {
		t.Errorf("identity of an unrelated new migration = %q", id)
	}
	delete(st.Migrations, "migration.a")
	if err := Move(st, "migration.c", "migration.a", now); err != nil {
		t.Fatal(err)
	}
	if ms := st.Migrations["migration.a"]; ms.Origin != "" || ms.Identity() != "migration.a" {
		t.Errorf("moved back to its origin: %+v; want no origin", ms)
	}
}
