package pgstate_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
)

// BenchmarkWriteRecord is one record write of a pass on a shared
// (PostgreSQL) state, as a step ending records it: the campaign holds 64
// migrations and the writer holds the lock shared and the record's claim.
// The figure to read is ns/op against the database the tests use, and
// through a relay that delays every transfer by 1 ms each way, as a
// server across a network would (each round trip of a write costs 2 ms
// there).
//
//	go test -run '^$' -bench WriteRecord ./reconcile/pgstate
func BenchmarkWriteRecord(b *testing.B) {
	for _, delay := range []time.Duration{0, time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%v", delay), func(b *testing.B) { benchWriteRecord(b, delay) })
	}
}

func benchWriteRecord(b *testing.B, delay time.Duration) {
	cs := pgtest.ConnStr(b, os.Getenv)
	s := sharedHolder(b, cs, pgtest.Workspace(b, cs), "bench", delay)
	st := reconcile.NewState()
	lineage, err := s.SetLineage("7d3c1b9e-0000-4000-8000-0000000000bb")
	if err != nil {
		b.Fatal(err)
	}
	st.Lineage = lineage
	const n = 64
	for i := range n {
		a := fmt.Sprintf("migration.m%02d", i)
		st.Migrations[a] = &reconcile.MigrationState{Address: a, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := s.Claim(a); err != nil {
			b.Fatal(err)
		}
		if err := s.WriteRecord(st, a, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		a := fmt.Sprintf("migration.m%02d", i%n)
		st.Migrations[a].Attempts++
		if err := s.WriteRecord(st, a, 4); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// delayedRelay listens on loopback and relays each connection to the
// server cs names, holding every transfer delay long in each direction;
// it returns cs pointed at itself.
func delayedRelay(b *testing.B, cs string, delay time.Duration) string {
	u, err := url.Parse(cs)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				time.Sleep(delay)
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	pgtest.Relay(ln, u.Host, func(c, s net.Conn) {
		go pipe(s, c)
		go pipe(c, s)
	})
	u.Host = ln.Addr().String()
	return u.String()
}

// BenchmarkTakeSlot takes and gives back the last free slot of a limit of
// 8 whose other 7 another process holds, as a pass waiting for a source's
// export slot polls: directly and through the 1 ms relay.
//
//	go test -run '^$' -bench TakeSlot ./reconcile/pgstate
func BenchmarkTakeSlot(b *testing.B) {
	for _, delay := range []time.Duration{0, time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%v", delay), func(b *testing.B) {
			cs := pgtest.ConnStr(b, os.Getenv)
			ws := pgtest.Workspace(b, cs)
			other := sharedHolder(b, cs, ws, "other", 0)
			for range 7 {
				if _, ok, err := other.TakeSlot("source.vsphere.dc1", 8); err != nil || !ok {
					b.Fatalf("taking the others' slots: %v, %v", ok, err)
				}
			}
			s := sharedHolder(b, cs, ws, "bench", delay)
			for b.Loop() {
				slot, ok, err := s.TakeSlot("source.vsphere.dc1", 8)
				if err != nil || !ok || slot != 7 {
					b.Fatalf("slot %d, %v, %v; want the last, 7", slot, ok, err)
				}
				if err := s.GiveSlot("source.vsphere.dc1", slot); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// sharedHolder opens the store of workspace ws, through the relay when
// delay is set, and holds its lock shared until the benchmark ends.
func sharedHolder(b *testing.B, cs, ws, op string, delay time.Duration) *reconcile.Store {
	if delay > 0 {
		cs = delayedRelay(b, cs, delay)
	}
	s := pgStore(b, cs, ws)
	b.Cleanup(func() { s.Close() })
	if _, err := s.LockSharedWait(b.Context(), op, 0, nil); err != nil {
		b.Fatal(err)
	}
	return s
}
