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
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/reconcile"
)

const testDevPassword = "pw-6b1f0c2e9d4a7358"

func usePassword(t *testing.T, pw string) {
	prev := devPassword
	devPassword = func() (string, error) { return pw, nil }
	t.Cleanup(func() { devPassword = prev })
}

// devEnv is a process-free env for dev, logging into the test.
func devEnv(t *testing.T, stdout, stderr *bytes.Buffer) *env {
	t.Helper()
	clearGovcEnv(t)
	return &env{
		stdout:   stdout,
		stderr:   stderr,
		registry: builtinRegistry(),
		log:      hclog.New(&hclog.LoggerOptions{Name: "dev", Output: stderr, Level: hclog.Info}),
	}
}

// clearGovcEnv keeps the developer's govc settings out: the vsphere source
// falls back to them.
func clearGovcEnv(t *testing.T) {
	for _, k := range []string{"GOVC_URL", "GOVC_USERNAME", "GOVC_PASSWORD", "GOVC_INSECURE", "GOVC_THUMBPRINT", "GOVC_DATACENTER", "GOVC_TLS_CA_CERTS"} {
		t.Setenv(k, "")
	}
}

// devDomainName is what dev names a VM's domain: a prefix of its own per
// run, so runs sharing the test driver stay apart.
var devDomainName = regexp.MustCompile(`^dev-[0-9a-f]{6}-(db-01|web-\d\d)$`)

// TestDevOnce runs `dev -once` as a user would and checks, independently
// of its own summary, that it converged on the real parts: every VM has a
// domain in the state, named for this run; its disk is a qcow2 image that
// qemu-img check accepts, holds exactly the guest bytes seeded into the
// simulator, and is still there after the exit, at the path printed; the
// second plan found nothing to do; the domains were undefined at the end;
// the secret reached no file or output. Without qemu-img or libvirtd dev
// fails, and so does this test.
func TestDevOnce(t *testing.T) {
	usePassword(t, testDevPassword)
	lv, err := holdTestDriver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lv.Disconnect()
	dir := filepath.Join(t.TempDir(), "dev")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"dev", "-once", "-dir=" + dir, "-vms=2", "-disk-mib=16"}, devEnv(t, &stdout, &stderr))
	if code != exitOK {
		t.Fatalf("dev -once exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
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

	st := loadDevState(t, filepath.Join(dir, ".hyperagent"))
	checkDevConverged(t, dir, st, lv, []string{"migration.db", `migration.web["web-01"]`}, out)
	for _, want := range []string{"Undefined the 2 domains", "Kept " + dir, "hyperagent -chdir=" + dir + " state list"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not say %q:\n%s", want, out)
		}
	}
	// What dev says works in the directory it kept, with no password.
	for _, args := range [][]string{{"state", "list"}, {"show"}, {"state", "show", "migration.db"}} {
		cmd := exec.Command(os.Args[0], append([]string{"-chdir=" + dir}, args...)...)
		cmd.Env = []string{fakesEnv + "=1", "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "migration.db") {
			t.Errorf("hyperagent -chdir=%s %s without the password: %v\n%s", dir, strings.Join(args, " "), err, out)
		}
	}
	// The secret reaches no file and no output.
	if files := filesHolding(t, dir, testDevPassword); len(files) > 0 {
		t.Errorf("files hold the password: %v", files)
	}
	if strings.Contains(out+stderr.String(), testDevPassword) {
		t.Errorf("the password was printed")
	}
}

// checkDevConverged checks a finished dev run's state against reality:
// the addresses, one qcow2 disk per domain that qemu-img checks and
// compares equal to its seed, printed in out, and every domain named for
// the run and gone from the test driver.
func checkDevConverged(t *testing.T, dir string, st *reconcile.State, lv *golibvirt.Libvirt, want []string, out string) {
	t.Helper()
	addrs := st.Addresses()
	if diff := cmp.Diff(want, addrs); diff != "" {
		t.Fatalf("state addresses (-want +got):\n%s", diff)
	}
	for _, a := range addrs {
		ms := st.Migrations[a]
		if ms.Domain == nil || len(ms.Domain.Disks) != 1 {
			t.Errorf("%s: want a domain with one disk, got %+v", a, ms.Domain)
			continue
		}
		if !devDomainName.MatchString(ms.Domain.Name) {
			t.Errorf("%s: domain %q is not named for this run", a, ms.Domain.Name)
		}
		if _, err := lv.DomainLookupByName(ms.Domain.Name); err == nil {
			t.Errorf("%s: domain %s is still defined after dev ended", a, ms.Domain.Name)
		}
		disk := ms.Domain.Disks[0].Path
		if !strings.Contains(out, disk) {
			t.Errorf("%s: the output does not say where its qcow2 file %s is", a, disk)
		}
		seed := filepath.Join(dir, "seeds", path.Base(ms.VM)+".raw")
		qemuImg(t, "check", "-q", "-f", "qcow2", disk)
		qemuImg(t, "compare", "-q", "-f", "raw", "-F", "qcow2", seed, disk)
	}
}

// TestDevRemovesItsDirectory: with -rm, nothing is left behind.
func TestDevRemovesItsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"dev", "-once", "-rm", "-dir=" + dir, "-vms=1", "-disk-mib=1"}, devEnv(t, &stdout, &stderr)); code != exitOK {
		t.Fatalf("dev exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is still there (err %v)", dir, err)
	}
}

func TestDevArgs(t *testing.T) {
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "keep-me"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args   []string
		stderr string
	}{
		"too many vms":     {[]string{"dev", "-vms=21"}, "-vms must be between 1 and 20"},
		"no vms":           {[]string{"dev", "-once", "-vms=0"}, "-vms must be between 1 and 20"},
		"disk too large":   {[]string{"dev", "-disk-mib=2048"}, "-disk-mib must be between 1 and 1024"},
		"stray argument":   {[]string{"dev", "now"}, "unexpected arguments: now"},
		"non-empty dir":    {[]string{"dev", "-once", "-dir=" + nonEmpty}, "is not empty"},
		"undefined flag":   {[]string{"dev", "-bogus"}, "flag provided but not defined: -bogus"},
		"help is no error": {[]string{"dev", "-h"}, "Usage: hyperagent dev [-once]"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, devEnv(t, &stdout, &stderr))
			want := exitError
			if name == "help is no error" {
				want = exitOK
			}
			if code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
			out := stderr.String()
			if name == "help is no error" { // help goes to stdout
				out = stdout.String()
			}
			if !strings.Contains(out, tt.stderr) {
				t.Errorf("output %q does not contain %q", out, tt.stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(nonEmpty, "keep-me")); err != nil {
		t.Errorf("the non-empty directory was touched: %v", err)
	}
}

// TestDevNeedsTheRealParts: without qemu-img or a reachable libvirtd dev
// fails before starting anything, and says how to get them.
func TestDevNeedsTheRealParts(t *testing.T) {
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
				prev := devSockets
				devSockets = []string{filepath.Join(t.TempDir(), "libvirt-sock")}
				t.Cleanup(func() { devSockets = prev })
			},
			want: []string{"libvirtd is not reachable", "sudo .ci/setup"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			tt.arrange(t)
			dir := filepath.Join(t.TempDir(), "dev")
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{"dev", "-once", "-dir=" + dir}, devEnv(t, &stdout, &stderr)); code != exitError {
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

func loadDevState(t *testing.T, dir string) *reconcile.State {
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

// BenchmarkDevOnce times the default `dev -once` (3 VMs, 32 MiB disks):
// simulator start and seeding, export, conversion, define, and the second
// plan.
func BenchmarkDevOnce(b *testing.B) {
	for b.Loop() {
		var stdout, stderr bytes.Buffer
		e := &env{stdout: &stdout, stderr: &stderr, registry: builtinRegistry(), log: hclog.NewNullLogger()}
		if code := run(context.Background(), []string{"dev", "-once", "-rm", "-dir=" + filepath.Join(b.TempDir(), "dev")}, e); code != exitOK {
			b.Fatalf("dev -once exited %d\n%s\n%s", code, stdout.String(), stderr.String())
		}
	}
}

// TestDevAgent runs `dev` (the agent's mode) as a process: it reaches
// converged on the real parts, the status API says so too, and SIGTERM
// stops it cleanly (exit 0), undefining the domains and saying where the
// repo, state and qcow2 files are.
func TestDevAgent(t *testing.T) {
	clearGovcEnv(t)
	lv, err := holdTestDriver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lv.Disconnect()
	dir := filepath.Join(t.TempDir(), "dev")
	c := startCLIEnv(t, []string{"HYPERAGENT_LOG="}, "dev", "-dir="+dir, "-vms=2", "-disk-mib=4")
	// A bound on the whole run: a dev that never converges ends its
	// output, and the wait below fails.
	kill := time.AfterFunc(3*time.Minute, func() { _ = c.cmd.Process.Kill() })
	defer kill.Stop()
	stderrDone := make(chan struct{})
	go func() { c.stderr.drain(); close(stderrDone) }()
	c.stdout.until(t, "==> Converged in", 1)

	s := (&agentChild{cliChild: c, sock: filepath.Join(dir, "agent.sock")}).status(t)
	if !devConverged(s, 2) {
		t.Errorf("dev said converged, its status API does not: %+v", s)
	}
	c.signal(t, syscall.SIGTERM)
	c.stdout.drain()
	<-stderrDone
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("dev after SIGTERM: %v\nstdout:\n%s\nstderr:\n%s", err, c.stdout.String(), c.stderr.String())
	}
	out := c.stdout.String()
	for _, want := range []string{"Agent stopped after", "Undefined the 2 domains", "Kept " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout does not say %q:\n%s", want, out)
		}
	}
	st := loadDevState(t, filepath.Join(dir, ".hyperagent"))
	checkDevConverged(t, dir, st, lv, []string{"migration.db", `migration.web["web-01"]`}, out)
}
