package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pgstate"
	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
)

// hostsWorld is a campaign several agents share: n OVAs (each a sparse
// raw disk of diskMiB) on a files source, the hyper2kvm watch directory
// served by the real worker, libvirtd's qemu driver as the target, and
// the state in a PostgreSQL workspace. Its lineage is fixed before any
// agent starts, so that the export directories can be made (and
// watched) beforehand.
type hostsWorld struct {
	work, repo, ws, lineage, prefix string
	addrs                           []string
	exportDirs                      map[string]string // address → export directory
}

// The OVAs' disk member: an export is complete when it is renamed into
// the export directory.
const hostsDisk = "big-disk1.raw"

// hostsLimits are the limits the world's plugins declare (0: none).
type hostsLimits struct{ exports, jobs int }

func newHostsWorld(t testing.TB, cs string, n, diskMiB int, limits hostsLimits) *hostsWorld {
	t.Helper()
	hw := &hostsWorld{work: t.TempDir(), ws: pgtest.Workspace(t, cs), lineage: uuid.NewString(),
		prefix: fmt.Sprintf("ha-hosts-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6), exportDirs: map[string]string{}}
	hw.repo = filepath.Join(hw.work, "repo")
	for _, d := range []string{"nas", "wf/to_be_processed", "wf/processing", "out", "exports", "images", "nvram", "repo"} {
		if err := os.MkdirAll(filepath.Join(hw.work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for i := range n {
		k := fmt.Sprintf("%02d", i)
		keys = append(keys, fmt.Sprintf("%q", k))
		writeSparseOVA(t, filepath.Join(hw.work, "nas", "vm-"+k+".ova"), hostsDisk, int64(diskMiB)<<20)
		addr := fmt.Sprintf("migration.vm[%q]", k)
		hw.addrs = append(hw.addrs, addr)
		hw.exportDirs[addr] = reconcile.ExportDir(filepath.Join(hw.work, "exports"), hw.lineage, addr)
		if err := os.MkdirAll(hw.exportDirs[addr], 0o750); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := range n {
			_ = exec.Command("virsh", "-c", "qemu:///system", "undefine", "--nvram", fmt.Sprintf("%s-%02d", hw.prefix, i)).Run()
		}
	})
	hcl := fmt.Sprintf(`
agent {
  auto_apply  = true
  interval    = "300ms"
  parallelism = 3
  retry_min   = "200ms"
  retry_max   = "2s"
}
state {
  backend   = "pg"
  workspace = %[2]q
}
source "files" "nas" {
  dir                  = "%[1]s/nas"
  max_parallel_exports = %[4]d
}
converter "hyper2kvm" "w" {
  workflow_dir  = "%[1]s/wf"
  output_dir    = "%[1]s/out"
  timeout       = "5m"
  max_in_flight = %[5]d
}
target "libvirt" "kvm" {
  uri         = "qemu:///system"
  storage_dir = "%[1]s/images"
  nvram_dir   = "%[1]s/nvram"
}
migration "vm" {
  for_each  = toset([%[3]s])
  source    = source.files.nas
  converter = converter.hyper2kvm.w
  target    = target.libvirt.kvm
  vm        = "vm-${each.key}.ova"
  export { dir = "%[1]s/exports" }
  convert {
    fix { enabled = false }
  }
  domain {
    name   = "%[6]s-${each.key}"
    memory = "256MiB"
    vcpus  = 1
  }
}
`, hw.work, hw.ws, strings.Join(keys, ", "), limits.exports, limits.jobs, hw.prefix)
	if err := os.WriteFile(filepath.Join(hw.repo, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	// The campaign exists, with its lineage, before any agent starts.
	s, err := pgstate.NewStore(cs, hw.ws)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Lock("test"); err != nil {
		t.Fatal(err)
	}
	st := reconcile.NewState()
	st.Lineage = hw.lineage
	if err := s.Write(st); err != nil {
		t.Fatal(err)
	}
	return hw
}

// startWorker runs `hyperagent worker` number i on the world's workflow
// directory.
func (hw *hostsWorld) startWorker(t testing.TB, i, jobs int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "worker", "-workflow-dir="+filepath.Join(hw.work, "wf"),
		"-input-root="+filepath.Join(hw.work, "exports"), "-output-root="+filepath.Join(hw.work, "out"),
		fmt.Sprintf("-jobs=%d", jobs), "-rescan=200ms", "-heartbeat=1s")
	cmd.Env = append(os.Environ(), fakesEnv+"=1", "HYPERAGENT_LOG=warn", "NOTIFY_SOCKET=")
	log, err := os.Create(filepath.Join(hw.work, fmt.Sprintf("worker-%d.log", i)))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopChild(cmd) })
	return cmd
}

// startHost runs one agent, a host, reaching the database through
// relay. It runs in a network namespace of its own where the test may
// make one (as root), else as a plain process; netns says which.
func (hw *hostsWorld) startHost(t testing.TB, i int, relay *pgRelay, cs string) (cmd *exec.Cmd, netns bool) {
	t.Helper()
	for _, ns := range []bool{true, false} {
		cmd = exec.Command(os.Args[0], "agent", "-config="+hw.repo, "-listen=unix:"+filepath.Join(hw.work, fmt.Sprintf("agent-%d.sock", i)))
		cmd.Env = append(os.Environ(), fakesEnv+"=1", "HYPERAGENT_LOG=info", "NOTIFY_SOCKET=",
			"HYPERAGENT_PG_CONN_STR="+relay.ConnStr(t, cs))
		log, err := os.Create(hw.hostLog(i))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if ns {
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
		}
		err = cmd.Start()
		log.Close()
		if err == nil {
			t.Cleanup(func() { stopChild(cmd) })
			return cmd, ns
		}
		if !ns || !errors.Is(err, syscall.EPERM) {
			t.Fatal(err)
		}
	}
	panic("unreachable")
}

func (hw *hostsWorld) hostLog(i int) string {
	return filepath.Join(hw.work, fmt.Sprintf("agent-%d.log", i))
}

// stopChild ends a child still running (a test that failed midway).
func stopChild(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// stop sends SIGTERM and returns the exit code (-1 when the child did
// not stop within a minute).
func stop(cmd *exec.Cmd) int {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		return -1
	}
}

// defined counts the migrations state records as defined.
func (hw *hostsWorld) defined(t testing.TB, s *reconcile.Store) int {
	_, n := hw.progress(t, s)
	return n
}

// progress counts the migrations state records as exported, and as
// defined.
func (hw *hostsWorld) progress(t testing.TB, s *reconcile.Store) (exported, defined int) {
	t.Helper()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, ms := range st.Migrations {
		if ms.Export != nil {
			exported++
		}
		if ms.Domain != nil {
			defined++
		}
	}
	return exported, defined
}

// claimsOf lists what the agent with pid claims now.
func (hw *hostsWorld) claimsOf(t testing.TB, conn *pgx.Conn, pid int) []string {
	t.Helper()
	rows, _ := conn.Query(context.Background(), `SELECT c.address FROM hyperagent_claims c JOIN hyperagent_campaigns k ON k.id = c.campaign
		WHERE k.workspace = $1 AND c.pid = $2 ORDER BY 1`, hw.ws, pid)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// temps lists the export temp files in the export directory of addr.
func (hw *hostsWorld) temps(addr string) []string {
	ents, _ := os.ReadDir(hw.exportDirs[addr])
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			out = append(out, filepath.Join(hw.exportDirs[addr], e.Name()))
		}
	}
	return out
}

// exporting says one of addrs has an export in progress.
func (hw *hostsWorld) exporting(addrs []string) bool {
	for _, a := range addrs {
		if len(hw.temps(a)) > 0 {
			return true
		}
	}
	return false
}

// TestThreeAgentsOneCampaign: three `hyperagent agent` processes, each in
// a network namespace of its own (reaching PostgreSQL through a relay,
// as hosts through a network), share one campaign of 30 VMs and one
// workflow directory served by the real worker (qemu-img), defining
// domains on libvirtd's qemu driver. One agent is killed with SIGKILL
// while it holds claims, mid-run; the other two finish its work. Each
// VM is exported once (its disk renamed into its export directory once;
// only an export the killed agent completed and had not recorded may be
// done again), submitted once (one manifest), and defined as one domain
// of this campaign; and the source's and converter's limits held across
// the hosts at every instant (high-water marks from the filesystem's
// events).
func TestThreeAgentsOneCampaign(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	const n, maxExports, maxJobs = 30, 2, 4
	hw := newHostsWorld(t, cs, n, 8, hostsLimits{exports: maxExports, jobs: maxJobs})
	dirs := make([]string, 0, n)
	for _, d := range hw.exportDirs {
		dirs = append(dirs, d)
	}
	watch := newCampaignWatch(t, hostsDisk, filepath.Join(hw.work, "wf"), dirs)
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"agent-0.log", "agent-1.log", "agent-2.log", "worker-0.log"} {
				t.Logf("%s ends:\n%s", f, tail(readFile(filepath.Join(hw.work, f)), 4000))
			}
		}
	})
	worker := hw.startWorker(t, 0, 2)
	var hosts []*exec.Cmd
	var relays []*pgRelay
	for i := range 3 {
		r := newPGRelay(t, cs)
		cmd, netns := hw.startHost(t, i, r, cs)
		if i == 0 {
			t.Logf("agents in network namespaces of their own: %v", netns)
		}
		hosts, relays = append(hosts, cmd), append(relays, r)
	}
	started := time.Now()
	state, err := pgstate.NewStore(cs, hw.ws)
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	conn, err := pgx.Connect(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	// Mid-run, agent 1 exporting: SIGKILL. Its database session is
	// held open (as a server keeps a vanished host's until it notices)
	// while the temp files of the exports it was doing are marked dead:
	// its claims and slots keep the others off those migrations until
	// then.
	victim := hosts[1]
	var claimed []string
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("agent 1 was never seen exporting once 6 migrations were exported (%d are defined)", hw.defined(t, state))
		}
		if exported, _ := hw.progress(t, state); exported >= 6 && hw.exporting(hw.claimsOf(t, conn, victim.Process.Pid)) {
			break
		}
	}
	relays[1].Hold()
	_ = victim.Process.Signal(syscall.SIGKILL)
	_ = victim.Wait()
	killedAt := time.Since(started)
	claimed = hw.claimsOf(t, conn, victim.Process.Pid)
	var dead []string
	for _, a := range claimed {
		dead = append(dead, hw.temps(a)...)
	}
	watch.died(dead)
	relays[1].Release()
	t.Logf("agent 1 killed after %v holding %v (%d export temp files left)", killedAt.Round(time.Millisecond), claimed, len(dead))

	for deadline := time.Now().Add(4 * time.Minute); hw.defined(t, state) < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d defined after 4 minutes", hw.defined(t, state), n)
		}
	}
	t.Logf("30 migrations defined in %v", time.Since(started).Round(time.Millisecond))
	for _, i := range []int{0, 2} {
		if code := stop(hosts[i]); code != 0 {
			t.Errorf("agent %d exited %d", i, code)
		}
	}
	if code := stop(worker); code != 0 {
		t.Errorf("the worker exited %d", code)
	}

	// Each migration submitted once: one manifest, processed.
	manifests, _ := filepath.Glob(filepath.Join(hw.work, "wf", "processed", "*", "*.json"))
	jobs := map[string]int{}
	for _, m := range manifests {
		if !strings.HasSuffix(m, ".report.json") {
			jobs[strings.TrimSuffix(filepath.Base(m), ".json")]++
		}
	}
	failed, _ := filepath.Glob(filepath.Join(hw.work, "wf", "failed", "*", "*"))
	if len(jobs) != n || len(failed) != 0 {
		t.Errorf("%d jobs processed (want %d): %v; %d files in failed/", len(jobs), n, jobs, len(failed))
	}
	for _, a := range hw.addrs {
		if id := reconcile.JobID(hw.lineage, a, 1); jobs[id] != 1 {
			t.Errorf("%s: job %s processed %d times; want once", a, id, jobs[id])
		}
	}
	// One domain each, of this campaign.
	out, err := exec.Command("virsh", "-c", "qemu:///system", "list", "--all", "--name").Output()
	if err != nil {
		t.Fatal(err)
	}
	var domains []string
	for _, name := range strings.Fields(string(out)) {
		if strings.HasPrefix(name, hw.prefix+"-") {
			domains = append(domains, name)
		}
	}
	if len(domains) != n {
		t.Errorf("%d domains named %s-*; want %d", len(domains), hw.prefix, n)
	}
	for _, d := range domains {
		xml, err := exec.Command("virsh", "-c", "qemu:///system", "dumpxml", d).Output()
		if err != nil || !bytes.Contains(xml, []byte(hw.lineage)) {
			t.Errorf("domain %s does not record campaign %s (%v)", d, hw.lineage, err)
		}
	}
	// Each export done once; the limits held.
	exportsHigh, jobsHigh, completions, werr := watch.marks()
	if werr != nil {
		t.Fatalf("the filesystem watch lost events: %v", werr)
	}
	for _, a := range hw.addrs {
		c := completions[hw.exportDirs[a]]
		if c != 1 && !(c == 2 && slices.Contains(claimed, a)) {
			t.Errorf("%s: exported %d times; want once", a, c)
		}
	}
	t.Logf("high-water marks: %d exports at once (limit %d), %d jobs in flight (limit %d)", exportsHigh, maxExports, jobsHigh, maxJobs)
	if exportsHigh > maxExports || jobsHigh > maxJobs || exportsHigh == 0 || jobsHigh == 0 {
		t.Errorf("high-water marks: %d exports (limit %d), %d jobs in flight (limit %d)", exportsHigh, maxExports, jobsHigh, maxJobs)
	}
	// Every agent worked, the killed one too.
	for i := range 3 {
		if c := strings.Count(readFile(hw.hostLog(i)), "step done"); c == 0 {
			t.Errorf("agent %d did no step", i)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
