package files

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/diskimage"
)

func TestBareImages(t *testing.T) {
	const mib = 1 << 20
	tests := map[string]struct {
		file     string
		args     []string // qemu-img create arguments before the path; nil writes 1 MiB of zeros
		format   string
		capacity int64 // 0: the header does not say, or is not parsed
	}{
		"qcow2":                {"a.qcow2", []string{"-f", "qcow2"}, "qcow2", 8 * mib},
		"qcow2 named img":      {"b.img", []string{"-f", "qcow2"}, "qcow2", 8 * mib},
		"vmdk sparse":          {"c.vmdk", []string{"-f", "vmdk"}, "vmdk", 8 * mib},
		"vmdk stream":          {"d.vmdk", []string{"-f", "vmdk", "-o", "subformat=streamOptimized"}, "vmdk", 8 * mib},
		"vmdk flat descriptor": {"e.vmdk", []string{"-f", "vmdk", "-o", "subformat=monolithicFlat"}, "vmdk", 0},
		"vhd dynamic":          {"f.vhd", []string{"-f", "vpc"}, "vhd", 0},
		"vhd fixed":            {"g.vhd", []string{"-f", "vpc", "-o", "subformat=fixed"}, "vhd", 0},
		"vhdx":                 {"h.vhdx", []string{"-f", "vhdx"}, "vhdx", 0},
		"vdi":                  {"i.vdi", []string{"-f", "vdi"}, "vdi", 0},
		"raw":                  {"j.raw", []string{"-f", "raw"}, "raw", 8 * mib},
		"raw without suffix":   {"k", nil, "raw", 1 * mib},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, tc.file)
			if tc.args == nil {
				writeFile(t, p, string(make([]byte, mib)))
			} else {
				qemuImg(t, append(append([]string{"create", "-q"}, tc.args...), p, "8M")...)
			}
			format, capacity, err := diskimage.Probe(p)
			if err != nil {
				t.Fatal(err)
			}
			// VPC rounds the size to its CHS geometry; only check it is close.
			if format != tc.format || (tc.capacity != 0 && capacity != tc.capacity) || (format == "vhd" && (capacity < 7*mib || capacity > 9*mib)) {
				t.Errorf("probe = %s, %d; want %s, %d", format, capacity, tc.format, tc.capacity)
			}

			s := newTestSource(t, root)
			r, err := s.Export(context.Background(), plugins.ExportRequest{Address: "m", VM: tc.file, Dir: t.TempDir(), Progress: func(plugins.ProgressEvent) {}})
			if err != nil {
				t.Fatal(err)
			}
			want := []plugins.Disk{{ID: "disk-0", Path: p, Format: tc.format, Size: size(t, p), SHA256: sha(t, p), Label: tc.file, CapacityBytes: capacity}}
			if diff := cmp.Diff(want, r.Export.Disks); diff != "" {
				t.Errorf("disks (-want +got):\n%s", diff)
			}
			wantFiles := 1
			if name == "vmdk flat descriptor" {
				wantFiles = 2 // the descriptor and its flat extent
			}
			if len(r.Export.Files) != wantFiles {
				t.Errorf("files = %+v, want %d", r.Export.Files, wantFiles)
			}
			if r.Export.Facts.Firmware != "unknown" || r.Export.Facts.Name == "" {
				t.Errorf("facts = %+v", r.Export.Facts)
			}
		})
	}
}

func TestUnits(t *testing.T) {
	tests := []struct {
		q, u string
		want int64
		bad  bool
	}{
		{"1", "byte", 1, false},
		{"2", "byte * 2^20", 2 << 20, false},
		{"3", "byte*2^30", 3 << 30, false},
		{"4", "KiloBytes", 4 << 10, false},
		{"5", "", 5, false},
		{"1", "byte * 1024^2", 1 << 20, false},
		{"1", "furlongs", 0, true},
		{"-1", "byte", 0, true},
		{"9223372036854775807", "byte * 2^20", 0, true},
	}
	for _, tc := range tests {
		got, err := toBytes(tc.q, tc.u)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("toBytes(%q, %q) = %d, %v; want %d (error %v)", tc.q, tc.u, got, err, tc.want, tc.bad)
		}
	}
}

func TestNewRefusesRelativeDir(t *testing.T) {
	if _, err := New(Config{Dir: "relative"}, nil); !plugins.IsTerminal(err) {
		t.Errorf("err = %v, want terminal", err)
	}
	if _, err := os.Stat("relative"); err == nil {
		t.Errorf("New created something")
	}
}
