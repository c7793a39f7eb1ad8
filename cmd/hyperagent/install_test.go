package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/schema"
)

// TestInstallAgreesWithUnits installs everything into a DESTDIR with
// systemd/install.sh, creates its users and directories there with
// systemd-sysusers and systemd-tmpfiles, verifies the installed units with
// systemd-analyze (and their exposure with its offline security check),
// and checks that the scaffold install.sh wrote validates and names the
// very directories the units and tmpfiles.d grant.
func TestInstallAgreesWithUnits(t *testing.T) {
	for _, tool := range []string{"systemd-analyze", "systemd-sysusers", "systemd-tmpfiles"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install Debian's systemd package (.ci/setup does): %v", tool, err)
		}
	}
	dest := t.TempDir()
	// This test binary is the hyperagent command when run under that name
	// (TestMain), which is what install.sh installs and runs for init.
	runTool(t, "", []string{"HYPERAGENT_BIN=" + os.Args[0]}, "../../systemd/install.sh", dest)
	runTool(t, "", nil, "systemd-sysusers", "--root="+dest, filepath.Join(dest, "usr/lib/sysusers.d/hyperagent.conf"))
	runTool(t, "", nil, "systemd-tmpfiles", "--root="+dest, "--create", filepath.Join(dest, "usr/lib/tmpfiles.d/hyperagent.conf"))
	passwd := read(t, filepath.Join(dest, "etc/passwd"))
	for _, u := range []string{"hyperagent:", "hyperagent-worker:"} {
		if !strings.Contains(passwd, u) {
			t.Errorf("sysusers did not create %s\n%s", u, passwd)
		}
	}

	// The units as installed, their binary at its DESTDIR path.
	units := filepath.Join(dest, "usr/lib/systemd/system")
	check := t.TempDir()
	for _, u := range []string{"hyperagent.service", "hyperagent-worker@.service"} {
		b := strings.ReplaceAll(read(t, filepath.Join(units, u)), "/usr/bin/hyperagent", filepath.Join(dest, "usr/bin/hyperagent"))
		if err := os.WriteFile(filepath.Join(check, u), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"hyperagent.service", "hyperagent-worker@main.service"} {
		if out := runTool(t, check, nil, "systemd-analyze", "verify", "./"+u); out != "" {
			t.Errorf("systemd-analyze verify %s:\n%s", u, out)
		}
		out := runTool(t, check, nil, "systemd-analyze", "security", "--offline=true", "./"+u)
		m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level for %s:\n%s", u, out)
		}
		if level, _ := strconv.ParseFloat(m[1], 64); level > 1.5 {
			t.Errorf("%s: exposure %s, want at most 1.5", u, m[1])
		}
	}

	// The scaffold validates, and names what the units grant.
	cfgDir := filepath.Join(dest, "etc/hyperagent")
	runTool(t, "", nil, filepath.Join(dest, "usr/bin/hyperagent"), "validate", cfgDir)
	cfg, _, diags := schema.Load(schema.LoadOptions{Dir: cfgDir, Plugins: builtinRegistry().Schemas()})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	agentUnit := read(t, filepath.Join(units, "hyperagent.service"))
	workerUnit := read(t, filepath.Join(units, "hyperagent-worker@.service"))
	if !strings.Contains(agentUnit, "-config=/etc/hyperagent") {
		t.Errorf("the agent's unit does not read /etc/hyperagent")
	}
	writable := directive(agentUnit, "ReadWritePaths")
	created := tmpfilesDirs(t, filepath.Join(dest, "usr/lib/tmpfiles.d/hyperagent.conf"))
	for _, dir := range []string{cfg.Agent.StateDir, stringAttr(t, cfg.Targets["libvirt.kvm1"], "storage_dir"),
		stringAttr(t, cfg.Converters["hyper2kvm.main"], "workflow_dir"), stringAttr(t, cfg.Converters["hyper2kvm.main"], "output_dir")} {
		if !created[dir] {
			t.Errorf("%s: the scaffold names it, tmpfiles.d does not create it", dir)
		}
		if !under(dir, writable) {
			t.Errorf("%s: the scaffold names it, the agent's unit may not write it (ReadWritePaths %v)", dir, writable)
		}
	}
	for _, m := range cfg.Migrations {
		if !created[m.Export.Dir] || !under(m.Export.Dir, writable) {
			t.Errorf("export dir %s: not created by tmpfiles.d or not writable by the agent", m.Export.Dir)
		}
		if !strings.Contains(workerUnit, "-input-root="+m.Export.Dir) {
			t.Errorf("export dir %s: the worker does not read it", m.Export.Dir)
		}
	}
	worker := strings.ReplaceAll(workerUnit, "%i", "main")
	for _, flag := range []string{"-workflow-dir=" + stringAttr(t, cfg.Converters["hyper2kvm.main"], "workflow_dir"),
		"-output-root=" + stringAttr(t, cfg.Converters["hyper2kvm.main"], "output_dir")} {
		if !strings.Contains(worker, flag) {
			t.Errorf("hyperagent-worker@main does not run with %s", flag)
		}
	}
}

func runTool(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// directive collects the space-separated values of a unit directive.
func directive(unit, key string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			out = append(out, strings.Fields(v)...)
		}
	}
	return out
}

func tmpfilesDirs(t *testing.T, path string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(read(t, path), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "d" {
			out[f[1]] = true
		}
	}
	return out
}

func under(dir string, roots []string) bool {
	for _, r := range roots {
		if dir == r || strings.HasPrefix(dir, r+"/") {
			return true
		}
	}
	return false
}

func stringAttr(t *testing.T, b *schema.PluginBlock, name string) string {
	t.Helper()
	if b == nil {
		t.Fatalf("the scaffold lacks a block")
	}
	return b.Config.GetAttr(name).AsString()
}
