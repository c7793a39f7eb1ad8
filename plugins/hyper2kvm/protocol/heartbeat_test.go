package protocol

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func validHeartbeat() *Heartbeat {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	return &Heartbeat{Version: 1, Host: "conv-01", PID: 42, StartedAt: t0, UpdatedAt: t0.Add(time.Minute),
		IntervalSeconds: 10, WorkerVersion: "hyperagent v0.3.0",
		InputRoots: []string{"/srv/exports"}, OutputRoots: []string{"/var/lib/hyperagent/output"},
		Capabilities: []string{CapConvert, CapValidate, CapChecksum}}
}

// TestHeartbeatRoundTrip: what a worker writes, the converter reads back
// unchanged, with the documented field names.
func TestHeartbeatRoundTrip(t *testing.T) {
	h := validHeartbeat()
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"version": 1`, `"host": "conv-01"`, `"pid": 42`, `"started_at": "2026-11-23T08:00:00Z"`,
		`"updated_at": "2026-11-23T08:01:00Z"`, `"interval_seconds": 10`, `"worker_version"`, `"input_roots"`,
		`"output_roots"`, `"capabilities"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("written heartbeat lacks %s:\n%s", field, b)
		}
	}
	got, err := ParseHeartbeat(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestHeartbeatValidate(t *testing.T) {
	tests := map[string]struct {
		edit func(*Heartbeat)
		want string
	}{
		"newer version":    {func(h *Heartbeat) { h.Version = 2 }, "version is 2, this hyperagent reads version 1"},
		"no host":          {func(h *Heartbeat) { h.Host = "" }, "host is empty"},
		"no pid":           {func(h *Heartbeat) { h.PID = 0 }, "pid is 0"},
		"no updated_at":    {func(h *Heartbeat) { h.UpdatedAt = time.Time{} }, "updated_at are required"},
		"no interval":      {func(h *Heartbeat) { h.IntervalSeconds = 0 }, "interval_seconds is 0"},
		"relative root":    {func(h *Heartbeat) { h.InputRoots = []string{"exports"} }, `input_roots: "exports" is not absolute`},
		"no output roots":  {func(h *Heartbeat) { h.OutputRoots = nil }, "output_roots is empty"},
		"valid as written": {func(h *Heartbeat) {}, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := validHeartbeat()
			tt.edit(h)
			b, _ := h.Marshal()
			_, err := ParseHeartbeat(b)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseHeartbeat: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := ParseHeartbeat([]byte("{")); err == nil {
		t.Error("a truncated heartbeat parsed")
	}
}

// TestHeartbeatFresh: fresh up to HeartbeatMissed intervals after the
// update, by the reader's clock; a writer clock ahead reads as fresh.
func TestHeartbeatFresh(t *testing.T) {
	h := validHeartbeat()
	for _, tt := range []struct {
		after time.Duration
		fresh bool
	}{{-time.Minute, true}, {0, true}, {30 * time.Second, true}, {30*time.Second + time.Millisecond, false}, {time.Hour, false}} {
		if got := h.Fresh(h.UpdatedAt.Add(tt.after)); got != tt.fresh {
			t.Errorf("%s after the update: fresh = %v, want %v", tt.after, got, tt.fresh)
		}
	}
	if !h.Can(CapConvert) || h.Can(CapFix) {
		t.Errorf("Can: convert %v, fix %v", h.Can(CapConvert), h.Can(CapFix))
	}
}

func TestHeartbeatName(t *testing.T) {
	for host, want := range map[string]string{
		"conv-01.example.org": "conv-01.example.org-42.json",
		"a/b c":               "a_b_c-42.json",
		"":                    "_-42.json",
		"..":                  "_..-42.json",
	} {
		got := HeartbeatName(host, 42)
		if got != want || !IsHeartbeatFile(got) {
			t.Errorf("HeartbeatName(%q) = %q (heartbeat file %v), want %q", host, got, IsHeartbeatFile(got), want)
		}
	}
	if IsHeartbeatFile(".conv-01-42.json.tmp123") || IsHeartbeatFile("notes.txt") {
		t.Error("a temp or foreign file counts as a heartbeat")
	}
}

func TestWithin(t *testing.T) {
	for _, tt := range []struct {
		path, root string
		want       bool
	}{
		{"/srv/exports", "/srv/exports", true},
		{"/srv/exports/web/disk.vmdk", "/srv/exports", true},
		{"/srv/exports/../etc", "/srv/exports", false},
		{"/srv/exports2/x", "/srv/exports", false},
		{"/srv", "/srv/exports", false},
		{"/anything", "/", true},
	} {
		if got := Within(tt.path, tt.root); got != tt.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tt.path, tt.root, got, tt.want)
		}
	}
}

// FuzzParseHeartbeat: no input panics the parser; a heartbeat that parses
// survives a marshal/parse round trip.
func FuzzParseHeartbeat(f *testing.F) {
	b, _ := validHeartbeat().Marshal()
	f.Add(b)
	f.Add([]byte(`{"version":1,"interval_seconds":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeartbeat(data)
		if err != nil {
			return
		}
		out, err := h.Marshal()
		if err != nil {
			t.Fatalf("marshal a valid heartbeat: %v", err)
		}
		if _, err := ParseHeartbeat(out); err != nil {
			t.Fatalf("valid heartbeat invalid after round trip: %v\n%s", err, out)
		}
	})
}
