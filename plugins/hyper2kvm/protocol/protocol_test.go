package protocol

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func validManifest() *Manifest {
	return &Manifest{
		ManifestVersion: "1.0",
		VM:              VM{CPU: 1, MemGB: 1, Firmware: "bios", OSHint: "linux"},
		Disks: []Disk{{ID: "disk0", SourceFormat: "vmdk", Bytes: 1, LocalPath: "/in/a.vmdk",
			Checksum: "sha256:" + strings.Repeat("a", 64)}},
		Pipeline: Pipeline{Convert: ConvertStage{Enabled: true}},
		Output:   Output{Directory: "/out/j", Format: "qcow2"},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Manifest)
		wants []string // substrings of the error; none = valid
	}{
		{"valid", func(*Manifest) {}, nil},
		{"version", func(m *Manifest) { m.ManifestVersion = "1.1" }, []string{"manifest_version"}},
		{"efi is not a manifest firmware", func(m *Manifest) { m.VM.Firmware = "efi" }, []string{"vm.firmware"}},
		{"no disks", func(m *Manifest) { m.Disks = nil }, []string{"at least one disk"}},
		{"duplicate ids", func(m *Manifest) { m.Disks = append(m.Disks, m.Disks[0]) }, []string{"not unique"}},
		{"bad checksum", func(m *Manifest) { m.Disks[0].Checksum = "md5:00" }, []string{"checksum"}},
		{"no checksum: optional, as for the daemon", func(m *Manifest) { m.Disks[0].Checksum = "" }, nil},
		{"upper-case checksum", func(m *Manifest) { m.Disks[0].Checksum = "sha256:" + strings.Repeat("A", 64) }, []string{"lower-case hex"}},
		{"relative path", func(m *Manifest) { m.Disks[0].LocalPath = "a.vmdk" }, []string{"not an absolute path"}},
		{"output dotdot", func(m *Manifest) { m.Output.Directory = "/out/../etc" }, []string{"clean absolute path"}},
		{"report escapes", func(m *Manifest) { m.Options.Report.Path = "../../x" }, []string{"options.report.path"}},
		{"level", func(m *Manifest) { m.Pipeline.Convert.CompressLevel = 10 }, []string{"compress_level"}},
		{"everything at once", func(m *Manifest) { m.VM.CPU = 0; m.Output.Format = "vmdk" }, []string{"vm.cpu", "output.format"}},
		{"identity", func(m *Manifest) {
			m.SetIdentity("disk0", FileIdentity{Dev: 1, Ino: 2, Size: 1, MtimeNS: 3, CtimeNS: 4})
		}, nil},
		{"identity malformed", func(m *Manifest) { m.Metadata.Tags = map[string]string{IdentityTag("disk0"): "dev=1 ino=2"} }, []string{`metadata.tags["file_identity.disk0"]`}},
		{"identity of no disk", func(m *Manifest) { m.SetIdentity("disk9", FileIdentity{Size: 1}) }, []string{`no disk has the id "disk9"`}},
		{"identity without checksum", func(m *Manifest) { m.Disks[0].Checksum = ""; m.SetIdentity("disk0", FileIdentity{Size: 1}) }, []string{"no checksum"}},
		{"identity of another size", func(m *Manifest) { m.SetIdentity("disk0", FileIdentity{Size: 2}) }, []string{"size 2, but the disk's bytes is 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			tt.edit(m)
			err := m.Validate()
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := validManifest()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"boot_order_hint": 0`) || !strings.Contains(string(b), `"inspect": {`) {
		t.Errorf("zero values must be written:\n%s", b)
	}
	for _, ext := range []string{".json", ".yaml"} { // JSON is YAML too
		got, err := ParseManifest(b, ext)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", ext, diff)
		}
	}
}

// TestManifestWithoutChecksum: a disk without a checksum is written without
// the key (the daemon refuses a present but empty one) and reads back valid.
func TestManifestWithoutChecksum(t *testing.T) {
	m := validManifest()
	m.Disks[0].Checksum = ""
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"checksum"`) {
		t.Errorf("an empty checksum must be left out:\n%s", b)
	}
	got, err := ParseManifest(b, ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("a manifest without checksum must validate: %v", err)
	}
}

func TestParseReport(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Outcome
		err  bool
	}{
		{"full", `{"version":"1.0","pipeline":{"success":true},"artifacts":[{"type":"converted_disk","path":"/o/d.qcow2","disk_id":"d","format":"qcow2","size_bytes":5}]}`,
			Outcome{Full: true, Success: true, Artifacts: []Artifact{{Type: "converted_disk", Path: "/o/d.qcow2", DiskID: "d", Format: "qcow2", SizeBytes: 5}}}, false},
		{"full failed", `{"version":"1.0","pipeline":{"success":false},"errors":[{"stage":"fix","message":"m"}]}`,
			Outcome{Full: true, Error: "fix: m"}, false},
		{"short success", `{"job_id":"j","status":"success","duration_s":3}`, Outcome{Success: true}, false},
		{"short completed", `{"manifest":"j.json","status":"completed","completed_at":"t"}`, Outcome{Success: true}, false},
		{"short other", `{"job_id":"j","status":"cancelled"}`, Outcome{Error: "report status cancelled"}, false},
		{"half written", `{"version":"1.0","pipel`, Outcome{}, true},
		{"empty", ``, Outcome{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReport([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestNames(t *testing.T) {
	ts := time.Date(2026, 11, 23, 1, 2, 3, 0, time.Local)
	if got := ClashName("j-1", ".json", ts); got != "j-1_20261123_010203.json" {
		t.Errorf("ClashName = %q", got)
	}
	for _, tt := range []struct {
		file, id string
		want     bool
	}{
		{"j", "j", true}, {"j_20261123_010203", "j", true}, {"j_2026", "j", false}, {"jj", "j", false}, {"j_20261123_010203", "j_2026", false},
	} {
		if got := MatchesJob(tt.file, tt.id); got != tt.want {
			t.Errorf("MatchesJob(%q, %q) = %v", tt.file, tt.id, got)
		}
	}
	for file, want := range map[string]string{"j": "j", "j_20261123_010203": "j", "j_20261123_010203_20261124_000000": "j_20261123_010203",
		"_20261123_010203": "_20261123_010203", "j_2026": "j_2026", "j-20261123_010203": "j-20261123_010203"} {
		if got := ClashBase(file); got != want {
			t.Errorf("ClashBase(%q) = %q, want %q", file, got, want)
		}
		if !MatchesJob(file, ClashBase(file)) {
			t.Errorf("MatchesJob(%q, ClashBase) = false", file)
		}
	}
	for name, ok := range map[string]bool{"a.json": true, "a.yml": true, "a.yaml": true, ".a.json.tmp": false, "a.json.report.json": false, "a b.json": false, "a.txt": false} {
		if _, _, got := JobFile(name); got != ok {
			t.Errorf("JobFile(%q) = %v", name, got)
		}
	}
}

// TestFileIdentity: a tag value round-trips, and anything but the exact
// five fields in order is refused.
func TestFileIdentity(t *testing.T) {
	id := FileIdentity{Dev: 2049, Ino: 1 << 40, Size: 537067520, MtimeNS: 1764604800123456789, CtimeNS: -5}
	got, err := ParseFileIdentity(id.String())
	if err != nil || got != id {
		t.Fatalf("round trip of %q = %+v, %v", id.String(), got, err)
	}
	for _, bad := range []string{
		"",
		"dev=1 ino=2 size=3 mtime_ns=4",
		"ino=2 dev=1 size=3 mtime_ns=4 ctime_ns=5",
		"dev=1 ino=2 size=-3 mtime_ns=4 ctime_ns=5",
		"dev=1 ino=2 size=3 mtime_ns=4 ctime_ns=5 extra=6",
		"dev=1  ino=2 size=3 mtime_ns=4 ctime_ns=5",
		"dev=x ino=2 size=3 mtime_ns=4 ctime_ns=5",
	} {
		if _, err := ParseFileIdentity(bad); err == nil {
			t.Errorf("ParseFileIdentity(%q) accepted", bad)
		}
	}
	m := validManifest()
	if _, ok, err := m.Identity(m.Disks[0]); ok || err != nil {
		t.Errorf("Identity without a tag = %v, %v", ok, err)
	}
	m.SetIdentity("disk0", id)
	if got, ok, err := m.Identity(m.Disks[0]); !ok || err != nil || got != id {
		t.Errorf("Identity = %+v, %v, %v", got, ok, err)
	}
}
