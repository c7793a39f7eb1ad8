package pgstate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pgstate"
	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
)

// TestRacingWriters: two processes that read the same state write at
// the same instant (transactions, without the Store's lock in between):
// one wins, the other is refused naming the serial stored and the one it
// read, and nothing of it is stored.
func TestRacingWriters(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	ws := pgtest.Workspace(t, cs)
	first := pgStore(t, cs, ws)
	defer first.Close()
	if _, err := first.Lock("test"); err != nil {
		t.Fatal(err)
	}
	st := reconcile.NewState()
	if err := first.Write(st); err != nil { // serial 1
		t.Fatal(err)
	}
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 2
	errs := make([]error, n)
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		b, err := pgstate.Open(cs, ws)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		mine, err := b.Load(ctx)
		if err != nil || mine.Serial != 1 {
			t.Fatalf("load: %+v, %v", mine, err)
		}
		mine.Migrations[fmt.Sprintf("migration.w%d", i)] = &reconcile.MigrationState{Address: fmt.Sprintf("migration.w%d", i)}
		mine.Serial = 2
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			errs[i] = b.Write(ctx, mine, reconcile.Version{Lineage: st.Lineage, Serial: 1})
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	won := -1
	for i, err := range errs {
		var ce *reconcile.ConflictError
		switch {
		case err == nil && won < 0:
			won = i
		case errors.As(err, &ce) && ce.Stored.Serial == 2 && ce.Base.Serial == 1 &&
			strings.Contains(err.Error(), "serial 2") && strings.Contains(err.Error(), "serial 1"):
		default:
			t.Fatalf("writer %d: %v; want one success and one ConflictError naming serials 2 and 1 (all: %v)", i, err, errs)
		}
	}
	if won < 0 {
		t.Fatalf("no writer won: %v", errs)
	}
	got, err := pgStore(t, cs, ws).Load()
	if err != nil || got.Serial != 2 || len(got.Migrations) != 1 || got.Migrations[fmt.Sprintf("migration.w%d", won)] == nil {
		t.Fatalf("stored after the race: %+v, %v; want the winner's alone", got, err)
	}
}

// TestSchemaMigration: a database without the schema gets it from the
// first backend that connects (several at once migrate once), and one
// whose schema is newer than this build's is refused.
func TestSchemaMigration(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	db := fmt.Sprintf("hyperagent_schema_%d", time.Now().UnixNano())
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)") })
	cfg, _ := pgx.ParseConfig(cs)
	fresh := strings.Replace(cs, "/"+cfg.Database+"?", "/"+db+"?", 1)
	if fresh == cs {
		t.Fatalf("cannot name another database in %s", pgtest.Env)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := pgStore(t, fresh, "w")
			defer s.Close()
			_, errs[i] = s.Load()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent first connections: %v", err)
	}
	conn, err := pgx.Connect(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var versions []int32
	rows, _ := conn.Query(ctx, "SELECT version FROM hyperagent_schema ORDER BY version")
	if versions, err = pgx.CollectRows(rows, pgx.RowTo[int32]); err != nil || len(versions) != pgstate.SchemaVersion {
		t.Fatalf("schema versions %v, %v; want 1..%d once each", versions, err, pgstate.SchemaVersion)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO hyperagent_schema (version) VALUES ($1)", pgstate.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s := pgStore(t, fresh, "w")
	defer s.Close()
	if _, err := s.Load(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema is version %d", pgstate.SchemaVersion+1)) {
		t.Fatalf("a newer schema: %v, want a refusal naming it", err)
	}
}

// TestHoldsWhatTheFileHolds: the database holds, for a campaign, the
// local file's content and nothing else: the campaign row's document and
// the records make up the very state, and the connection string (nor
// its password) is in no row of any table.
func TestHoldsWhatTheFileHolds(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	ws := pgtest.Workspace(t, cs)
	dir := t.TempDir()
	local, err := reconcile.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	pg := pgStore(t, cs, ws)
	defer pg.Close()
	now := time.Now().UTC()
	st := reconcile.NewState()
	st.Lineage = "7c1f3a52-0000-4000-8000-000000000001"
	st.SuspendedAll = &now
	st.Migrations["migration.a"] = &reconcile.MigrationState{Address: "migration.a", VM: "/DC1/vm/a", CreatedAt: now, UpdatedAt: now,
		LastError: &reconcile.ErrorRecord{Step: reconcile.StepExport, Message: "refused", At: now}}
	for _, s := range []*reconcile.Store{local, pg} {
		if _, err := s.Lock("test"); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(st.Clone()); err != nil {
			t.Fatal(err)
		}
		if err := s.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(local.Path())
	if err != nil {
		t.Fatal(err)
	}
	fromDB, err := pg.Load()
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := fromDB.Encode()
	if string(enc) != string(file) {
		t.Fatalf("the database's state differs from the file's:\n%s\nfile:\n%s", enc, file)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	cfg, _ := pgx.ParseConfig(cs)
	for _, table := range []string{"hyperagent_campaigns", "hyperagent_migrations", "hyperagent_locks", "hyperagent_schema"} {
		var dump string
		if err := conn.QueryRow(ctx, "SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM "+table+" t").Scan(&dump); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{cs, cfg.Password} {
			if strings.Contains(dump, secret) {
				t.Errorf("%s holds the connection string or its password", table)
			}
		}
	}
}
