package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
)

const mib = 1 << 20

// feed reports an item of total bytes in steps of step bytes.
func feed(v *progressView, addr, item string, total, step int64) {
	for done := int64(0); done < total; done += step {
		v.report(plugins.ProgressEvent{Address: addr, Item: item, Done: done, Total: total})
	}
	v.report(plugins.ProgressEvent{Address: addr, Item: item, Done: total, Total: total})
}

// Off a terminal, each item gets a line at every 10% mark and at the end,
// whatever the number of reports.
func TestProgressLogLines(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	v := newProgressView(&mu, &out, false, nil)
	feed(v, "migration.db", "disk-0.vmdk", 100*mib, mib)
	v.println("migration.db: export done")
	v.done()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"migration.db: disk-0.vmdk 0% (0 B of 100.0 MiB)"}
	for p := 10; p <= 100; p += 10 {
		want = append(want, "migration.db: disk-0.vmdk "+amount(int64(p)*mib, 100*mib))
	}
	want = append(want, "migration.db: export done")
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Error("escape sequences off a terminal")
	}
}

// On a terminal the items in flight share a status line of bars, which is
// cleared before every other line and redrawn after it; a finished item
// leaves one line behind.
func TestProgressTerminalBars(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	v := newProgressView(&mu, &out, true, nil)
	clock := time.Unix(0, 0)
	v.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	v.report(plugins.ProgressEvent{Address: "migration.a", Item: "a.vmdk", Done: 4 * mib, Total: 10 * mib})
	v.report(plugins.ProgressEvent{Address: "migration.b", Item: "b.vmdk", Done: 1 * mib, Total: 10 * mib})
	if got := out.String(); !strings.HasSuffix(got, "\r\x1b[Ka.vmdk [####------] 40%  b.vmdk [#---------] 10%") {
		t.Fatalf("status line: %q", got)
	}
	out.Reset()
	v.println("migration.c: export start")
	if got, want := out.String(), "\r\x1b[Kmigration.c: export start\n\r\x1b[Ka.vmdk [####------] 40%  b.vmdk [#---------] 10%"; got != want {
		t.Fatalf("a line above the bars:\n got %q\nwant %q", got, want)
	}
	out.Reset()
	v.report(plugins.ProgressEvent{Address: "migration.a", Item: "a.vmdk", Done: 10 * mib, Total: 10 * mib})
	if got, want := out.String(), "\r\x1b[Kmigration.a: a.vmdk 100% (10.0 MiB of 10.0 MiB)\n\r\x1b[Kb.vmdk [#---------] 10%"; got != want {
		t.Fatalf("a finished item:\n got %q\nwant %q", got, want)
	}
	out.Reset()
	v.done()
	if got := out.String(); got != "\r\x1b[K" {
		t.Fatalf("done leaves %q", got)
	}
}

// Redraws are bounded in time: a burst of reports draws once.
func TestProgressTerminalThrottled(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	v := newProgressView(&mu, &out, true, nil)
	now := time.Unix(100, 0)
	v.now = func() time.Time { return now }
	for i := int64(1); i < 1000; i++ {
		v.report(plugins.ProgressEvent{Address: "migration.a", Item: "a.vmdk", Done: i, Total: 1000})
	}
	if n := strings.Count(out.String(), "\r\x1b[K"); n != 1 {
		t.Errorf("%d redraws in one instant, want 1", n)
	}
}

func TestProgressJSON(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	emit := func(x any) {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, string(b))
	}
	v := newProgressView(&mu, &bytes.Buffer{}, true, emit)
	feed(v, "migration.db", "d.vmdk", 10*mib, mib/2)
	if len(lines) != 11 {
		t.Fatalf("%d progress objects, want 11 (0%%..100%%):\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if want := `{"type":"progress","address":"migration.db","item":"d.vmdk","done":10485760,"total":10485760}`; lines[10] != want {
		t.Errorf("last = %s, want %s", lines[10], want)
	}
}

func TestAmountAndBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		amount, bar string
	}{
		{0, 0, "100% (0 B of 0 B)", "0 B"},
		{512, -1, "512 B", "512 B"},
		{3 * mib / 2, 3 * mib, "50% (1.5 MiB of 3.0 MiB)", "[#####-----] 50%"},
		{5 << 30, 10 << 30, "50% (5.0 GiB of 10.0 GiB)", "[#####-----] 50%"},
	} {
		if got := amount(tc.done, tc.total); got != tc.amount {
			t.Errorf("amount(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.amount)
		}
		if got := bar(tc.done, tc.total); got != tc.bar {
			t.Errorf("bar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.bar)
		}
	}
}
