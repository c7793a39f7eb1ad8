//go:build demo

package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/reconcile"
)

const testDemoPassword = "pw-6b1f0c2e9d4a7358"

func usePassword(t *testing.T, pw string) {
	prev := demoPassword
	demoPassword = func() (string, error) { return pw, nil }
	t.Cleanup(func() { demoPassword = prev })
}

// demoEnv is a process-free env for the demo, logging into the test.
func demoEnv(t *testing.T, stdout, stderr *bytes.Buffer) *env {
	t.Helper()
	// The vsphere source falls back to govc's environment; keep the
	// developer's out.
	for _, k := range []string{"GOVC_URL", "GOVC_USERNAME", "GOVC_PASSWORD", "GOVC_INSECURE", "GOVC_THUMBPRINT", "GOVC_DATACENTER", "GOVC_TLS_CA_CERTS"} {
		t.Setenv(k, "")
	}
	return &env{
		stdout:   stdout,
		stderr:   stderr,
		registry: builtinRegistry(),
		log:      hclog.New(&hclog.LoggerOptions{Name: "demo", Output: stderr, Level: hclog.Info}),
	}
}

// TestDemo runs the demo as a user would and checks, independently of the
// demo's own summary, that it converged on the real parts: every VM has a
// domain in the state, its disk is a qcow2 image that qemu-img check accepts
// and holds exactly the guest bytes seeded into the simulator, and the
// second plan found nothing to do. Without qemu-img or libvirtd the demo
// fails, and so does this test.
func TestDemo(t *testing.T) {
	usePassword(t, testDemoPassword)
	dir := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "-dir=" + dir, "-vms=2", "-disk-mib=16", "-keep"}, demoEnv(t, &stdout, &stderr))
	if code != exitOK {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	_, afterApply, ok := strings.Cut(out, "$ hyperagent apply")
	if !ok || !strings.Contains(afterApply, "Apply complete: 2 migrated") {
		t.Errorf("no complete apply in the output:\n%s", out)
	}
	_, secondPlan, ok := strings.Cut(afterApply, "$ hyperagent plan")
	if !ok || !strings.Contains(secondPlan, "No changes.") {
		t.Errorf("the plan after apply did not say No changes.:\n%s", out)
	}

	st := loadDemoState(t, filepath.Join(dir, ".hyperagent"))
	addrs := st.Addresses()
	if diff := cmp.Diff([]string{"migration.db", `migration.web["web-01"]`}, addrs); diff != "" {
		t.Fatalf("state addresses (-want +got):\n%s", diff)
	}
	for _, a := range addrs {
		ms := st.Migrations[a]
		if ms.Domain == nil || len(ms.Domain.Disks) != 1 {
			t.Errorf("%s: want a domain with one disk, got %+v", a, ms.Domain)
			continue
		}
		disk := ms.Domain.Disks[0].Path
		seed := filepath.Join(dir, "seeds", path.Base(ms.VM)+".raw")
		qemuImg(t, "check", "-q", "-f", "qcow2", disk)
		qemuImg(t, "compare", "-q", "-f", "raw", "-F", "qcow2", seed, disk)
	}
	// The secret reaches no file and no output.
	if files := filesHolding(t, dir, testDemoPassword); len(files) > 0 {
		t.Errorf("files hold the password: %v", files)
	}
	if strings.Contains(out+stderr.String(), testDemoPassword) {
		t.Errorf("the password was printed")
	}
}

// TestDemoRemovesItsDirectory: without -keep, nothing is left behind.
func TestDemoRemovesItsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"demo", "-dir=" + dir, "-vms=1", "-disk-mib=1"}, demoEnv(t, &stdout, &stderr)); code != exitOK {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is still there (err %v)", dir, err)
	}
}

func TestDemoArgs(t *testing.T) {
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "keep-me"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args   []string
		stderr string
	}{
		"too many vms":     {[]string{"demo", "-vms=21"}, "-vms must be between 1 and 20"},
		"no vms":           {[]string{"demo", "-vms=0"}, "-vms must be between 1 and 20"},
		"disk too large":   {[]string{"demo", "-disk-mib=2048"}, "-disk-mib must be between 1 and 1024"},
		"stray argument":   {[]string{"demo", "now"}, "unexpected arguments: now"},
		"non-empty dir":    {[]string{"demo", "-dir=" + nonEmpty}, "is not empty"},
		"undefined flag":   {[]string{"demo", "-bogus"}, "flag provided but not defined: -bogus"},
		"help is no error": {[]string{"demo", "-h"}, "Usage: hyperagent demo"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, demoEnv(t, &stdout, &stderr))
			want := exitError
			if name == "help is no error" {
				want = exitOK
			}
			if code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(nonEmpty, "keep-me")); err != nil {
		t.Errorf("the non-empty directory was touched: %v", err)
	}
}

// TestDemoNeedsTheRealParts: without qemu-img or a reachable libvirtd the
// demo fails before starting anything, and says how to get them.
func TestDemoNeedsTheRealParts(t *testing.T) {
	tests := map[string]struct {
		arrange func(t *testing.T)
		want    []string
	}{
		"no qemu-img": {
			arrange: func(t *testing.T) { t.Setenv("PATH", t.TempDir()) },
			want:    []string{"qemu-img not found", "qemu-utils", "sudo .ci/setup"},
		},
		"no libvirtd": {
			arrange: func(t *testing.T) {
				prev := demoSockets
				demoSockets = []string{filepath.Join(t.TempDir(), "libvirt-sock")}
				t.Cleanup(func() { demoSockets = prev })
			},
			want: []string{"libvirtd is not reachable", "sudo .ci/setup"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			tt.arrange(t)
			dir := filepath.Join(t.TempDir(), "demo")
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"demo", "-dir=" + dir}, demoEnv(t, &stdout, &stderr)); code != exitError {
				t.Errorf("exit %d, want %d", code, exitError)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not say %q", stderr.String(), w)
				}
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s was created before the checks (err %v)", dir, err)
			}
		})
	}
}

func loadDemoState(t *testing.T, dir string) *reconcile.State {
	t.Helper()
	store, err := reconcile.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Errorf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// filesHolding lists the files under dir whose bytes contain secret.
func filesHolding(t *testing.T, dir, secret string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(secret)) {
			found = append(found, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// BenchmarkDemo times the default demo (3 VMs, 32 MiB disks): simulator
// start and seeding, export, conversion, define, and the second plan.
func BenchmarkDemo(b *testing.B) {
	for b.Loop() {
		var stdout, stderr bytes.Buffer
		e := &env{stdout: &stdout, stderr: &stderr, registry: builtinRegistry(), log: hclog.NewNullLogger()}
		if code := run(context.Background(), []string{"demo", "-dir=" + filepath.Join(b.TempDir(), "demo")}, e); code != exitOK {
			b.Fatalf("demo exited %d\n%s\n%s", code, stdout.String(), stderr.String())
		}
	}
}
