package pgstate

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
)

// TestSessionKeepalives: the session asks the server to give up on a
// host it no longer hears from within about 25 s (10 s idle, 3 probes
// 5 s apart), so that another host can take its claims over; a
// connection string that sets them itself is obeyed.
func TestSessionKeepalives(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	own := cs + " tcp_keepalives_idle=30"
	if strings.Contains(cs, "://") {
		own = cs + map[bool]string{true: "&", false: "?"}[strings.Contains(cs, "?")] + "tcp_keepalives_idle=30"
	}
	for _, c := range []struct{ connStr, idle string }{{cs, "10"}, {own, "30"}} {
		b, err := Open(c.connStr, "keepalive")
		if err != nil {
			t.Fatal(err)
		}
		conn, err := b.connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, k := range []string{"tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count"} {
			var v string
			if err := conn.QueryRow(context.Background(), "SHOW "+k).Scan(&v); err != nil {
				t.Fatal(err)
			}
			got[k] = v
		}
		b.Close()
		if got["tcp_keepalives_idle"] != c.idle || got["tcp_keepalives_interval"] != "5" || got["tcp_keepalives_count"] != "3" {
			t.Errorf("keepalives %v, want idle %s, interval 5, count 3", got, c.idle)
		}
	}
}
