package schema

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// loadWithin runs Load and fails the test if it has not returned after
// 20 seconds: a FIFO or a device must make Load fail, never hang, and a
// regression must fail the test rather than block it until the global
// timeout. (A hang leaves the goroutine behind; the test has failed.)
func loadWithin(t *testing.T, opts LoadOptions) (*Config, hcl.Diagnostics) {
	t.Helper()
	if opts.Plugins == nil {
		opts.Plugins = testPlugins
	}
	type result struct {
		cfg   *Config
		diags hcl.Diagnostics
	}
	done := make(chan result, 1)
	go func() {
		cfg, _, diags := Load(opts)
		done <- result{cfg, diags}
	}()
	select {
	case r := <-done:
		return r.cfg, r.diags
	case <-time.After(20 * time.Second):
		t.Fatal("Load has not returned after 20s")
		return nil, nil
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// bigFile makes a sparse file one byte over the size limit.
func bigFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(maxFileSize + 1); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// Only regular files are read as configuration, each up to the size
// limit, and the message says what is wrong with the file.
func TestConfigFilesMustBeRegular(t *testing.T) {
	tests := map[string]struct {
		setup func(t *testing.T, dir string)
		want  string // in the detail
	}{
		"fifo": {
			setup: func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "z.hcl")) },
			want:  "z.hcl is a named pipe (FIFO), not a regular file.",
		},
		"symlink to /dev/zero": {
			setup: func(t *testing.T, dir string) { symlink(t, "/dev/zero", filepath.Join(dir, "z.hcl")) },
			want:  "z.hcl is a character device, not a regular file.",
		},
		"symlink loop": {
			setup: func(t *testing.T, dir string) {
				symlink(t, "y.hcl", filepath.Join(dir, "z.hcl"))
				symlink(t, "z.hcl", filepath.Join(dir, "y.hcl"))
			},
			want: "y.hcl is a symbolic link that loops, or leads through too many links: too many levels of symbolic links.",
		},
		"symlink to a directory": {
			setup: func(t *testing.T, dir string) { symlink(t, t.TempDir(), filepath.Join(dir, "z.hcl")) },
			want:  "z.hcl is a directory, not a regular file.",
		},
		"too large": {
			setup: func(t *testing.T, dir string) { bigFile(t, filepath.Join(dir, "z.hcl")) },
			want:  "z.hcl is larger than 16 MiB (16777217 bytes).",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeRepo(t, map[string]string{"main.hcl": basePlugins})
			tt.setup(t, dir)
			_, diags := loadWithin(t, LoadOptions{Dir: dir})
			if !diags.HasErrors() || diags[0].Summary != "Cannot read configuration file" || !strings.HasSuffix(diags[0].Detail, tt.want) {
				t.Fatalf("want Cannot read configuration file ending %q, got:\n%s", tt.want, diagText(diags))
			}
		})
	}
}

func TestVarFilesMustBeRegular(t *testing.T) {
	tests := map[string]struct {
		setup func(t *testing.T, dir string) string // returns the -var-file path
		want  string
	}{
		"/dev/zero": {
			setup: func(*testing.T, string) string { return "/dev/zero" },
			want:  "/dev/zero is a character device, not a regular file.",
		},
		"fifo": {
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "vars.fifo")
				mkfifo(t, p)
				return p
			},
			want: "vars.fifo is a named pipe (FIFO), not a regular file.",
		},
		"too large": {
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "big.hcl")
				bigFile(t, p)
				return p
			},
			want: "big.hcl is larger than 16 MiB (16777217 bytes).",
		},
		"missing": {
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "nope.hcl") },
			want:  "nope.hcl: no such file or directory.",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := writeRepo(t, map[string]string{"main.hcl": basePlugins})
			_, diags := loadWithin(t, LoadOptions{Dir: dir, VarFiles: []string{tt.setup(t, t.TempDir())}})
			if len(diags) != 1 || diags[0].Summary != "Cannot read variables file" || !strings.HasSuffix(diags[0].Detail, tt.want) {
				t.Fatalf("want Cannot read variables file ending %q, got:\n%s", tt.want, diagText(diags))
			}
		})
	}
}

// file() of a FIFO used to block until a writer came.
func TestFileRefusesFIFO(t *testing.T) {
	dir := writeRepo(t, map[string]string{"main.hcl": `
locals {
  z = file("pipe")
}
`})
	mkfifo(t, filepath.Join(dir, "pipe"))
	_, diags := loadWithin(t, LoadOptions{Dir: dir})
	if !diags.HasErrors() || !strings.Contains(diagText(diags), "pipe is a named pipe (FIFO), not a regular file") {
		t.Fatalf("diagnostics:\n%s", diagText(diags))
	}
}
