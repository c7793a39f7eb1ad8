package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/docs"
)

func validProgress() *Progress {
	return &Progress{Version: 1, Job: "web-01-2bdbeddb8837-a1.json", Token: "0123456789abcdef",
		UpdatedAt: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), DoneBytes: 400, TotalBytes: 1000, Disk: "disk0"}
}

// TestProgressRoundTrip: what the worker writes, the converter reads back
// unchanged, with the documented field names, in a few hundred bytes.
func TestProgressRoundTrip(t *testing.T) {
	p := validProgress()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"version":1`, `"job":"web-01-2bdbeddb8837-a1.json"`, `"token":"0123456789abcdef"`,
		`"updated_at":"2026-11-23T08:00:00Z"`, `"done_bytes":400`, `"total_bytes":1000`, `"disk":"disk0"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("written progress lacks %s:\n%s", field, b)
		}
	}
	if len(b) > 512 {
		t.Errorf("a progress file of %d bytes, want under 512", len(b))
	}
	got, err := ParseProgress(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := docs.Validate("progress.json", b); err != nil {
		t.Errorf("against docs/schema/progress.json: %v\n%s", err, b)
	}
}

// TestProgressSchemaRefuses: the published schema refuses what the reader
// refuses, but for done_bytes over total_bytes, which its description
// states.
func TestProgressSchemaRefuses(t *testing.T) {
	for name, edit := range map[string]func(*Progress){
		"newer version":  func(p *Progress) { p.Version = 2 },
		"not a job file": func(p *Progress) { p.Job = "../x.json" },
		"short token":    func(p *Progress) { p.Token = "abc" },
		"no total":       func(p *Progress) { p.TotalBytes = 0 },
		"absurd total":   func(p *Progress) { p.TotalBytes, p.DoneBytes = 1<<62, 0 },
		"negative done":  func(p *Progress) { p.DoneBytes = -1 },
		"bad disk":       func(p *Progress) { p.Disk = "disk 0" },
	} {
		p := validProgress()
		edit(p)
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if docs.Validate("progress.json", b) == nil {
			t.Errorf("%s: the schema accepts %s", name, b)
		}
		if _, err := ParseProgress(b); err == nil {
			t.Errorf("%s: ParseProgress accepts %s", name, b)
		}
	}
}

func TestProgressValidate(t *testing.T) {
	tests := map[string]struct {
		edit func(*Progress)
		want string
	}{
		"newer version":    {func(p *Progress) { p.Version = 2 }, "version is 2, this hyperagent reads version 1"},
		"not a job file":   {func(p *Progress) { p.Job = "../x.json" }, `job "../x.json" is not a job file name`},
		"a dot-file":       {func(p *Progress) { p.Job = ".j.json" }, "is not a job file name"},
		"short token":      {func(p *Progress) { p.Token = "abc" }, `token "abc" is not 16 hex digits`},
		"no updated_at":    {func(p *Progress) { p.UpdatedAt = time.Time{} }, "updated_at is required"},
		"no total":         {func(p *Progress) { p.TotalBytes = 0 }, "total_bytes is 0"},
		"absurd total":     {func(p *Progress) { p.TotalBytes, p.DoneBytes = 1<<62, 0 }, "total_bytes is 4611686018427387904"},
		"done over total":  {func(p *Progress) { p.DoneBytes = 1001 }, "done_bytes is 1001, want 0 to total_bytes (1000)"},
		"negative done":    {func(p *Progress) { p.DoneBytes = -1 }, "done_bytes is -1"},
		"bad disk":         {func(p *Progress) { p.Disk = "disk 0" }, `disk "disk 0" is not a disk id`},
		"all done":         {func(p *Progress) { p.DoneBytes = 1000 }, ""},
		"valid as written": {func(p *Progress) {}, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := validProgress()
			tt.edit(p)
			err := p.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestParseLease(t *testing.T) {
	tests := map[string]struct {
		data string
		want Lease
		err  string
	}{
		"as the worker writes it": {"host-1/42/0a0b0c0d 0123456789abcdef\n", Lease{"host-1/42/0a0b0c0d", "0123456789abcdef"}, ""},
		"a space in the owner":    {"odd host/42/0a 0123456789abcdef\n", Lease{"odd host/42/0a", "0123456789abcdef"}, ""},
		"no newline":              {"w 0123456789abcdef", Lease{}, "not one line"},
		"two lines":               {"w 0123456789abcdef\nx\n", Lease{}, "want"},
		"no owner":                {" 0123456789abcdef\n", Lease{}, "want"},
		"no token":                {"0123456789abcdef\n", Lease{}, "want"},
		"upper-case garbage":      {"w XYZ\n", Lease{}, "not 16 hex digits"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseLease([]byte(tt.data))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("ParseLease(%q) = %+v, %v; want an error saying %q", tt.data, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseLease(%q) = %+v, %v; want %+v", tt.data, got, err, tt.want)
			}
			if back := string(got.Marshal()); back != tt.data {
				t.Errorf("Marshal = %q, want %q", back, tt.data)
			}
		})
	}
}

// FuzzParseProgress: no input panics the progress or lease parsers; a
// progress file that parses keeps done within a positive total and
// survives a marshal/parse round trip.
func FuzzParseProgress(f *testing.F) {
	b, _ := validProgress().Marshal()
	f.Add(b)
	f.Add([]byte(`{"version":1,"done_bytes":2,"total_bytes":1}`))
	f.Add([]byte("w 0123456789abcdef\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseLease(data)
		p, err := ParseProgress(data)
		if err != nil {
			return
		}
		if p.TotalBytes <= 0 || p.DoneBytes < 0 || p.DoneBytes > p.TotalBytes {
			t.Fatalf("a progress file out of bounds parsed: %+v", p)
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("marshal a valid progress file: %v", err)
		}
		if _, err := ParseProgress(out); err != nil {
			t.Fatalf("valid progress file invalid after round trip: %v\n%s", err, out)
		}
	})
}
