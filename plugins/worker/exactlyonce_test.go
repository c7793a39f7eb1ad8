package worker

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// The exactly-once test re-executes this test binary as worker processes.
const roleEnv = "HYPERAGENT_WORKER_TEST_ROLE"

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "worker" {
		os.Exit(workerRole())
	}
	os.Exit(m.Run())
}

// workerRole runs one worker process configured from the environment. Each
// conversion start and end is appended (O_APPEND, one write per line) to
// the trace log the parent checks for overlaps.
func workerRole() int {
	trace, err := os.OpenFile(os.Getenv("TRACE_LOG"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pid := os.Getpid()
	cfg := Config{
		WorkflowDir: os.Getenv("WF"), InputRoots: []string{os.Getenv("IN")}, OutputRoots: []string{os.Getenv("OUT")},
		Jobs: 2, Lease: 1500 * time.Millisecond, Rescan: 200 * time.Millisecond, Grace: 10 * time.Second,
		QemuImg: os.Getenv("QEMU_IMG"),
		Logger:  hclog.New(&hclog.LoggerOptions{Name: "worker-" + strconv.Itoa(pid), Output: os.Stderr, Level: hclog.Warn}),
		Trace: func(event, id string) {
			fmt.Fprintf(trace, "%s %s %d\n", event, id, pid)
		},
	}
	if v := os.Getenv("LEASE"); v != "" {
		if cfg.Lease, err = time.ParseDuration(v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	w, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestExactlyOnce: 4 worker processes on one directory, 200 jobs, workers
// SIGKILLed at random and restarted. Every job must end in processed/
// exactly once, none lost or failed, and no job may be converting in two
// processes at once (from the append-only trace: a second start while an
// earlier start has neither ended nor had its process killed).
func TestExactlyOnce(t *testing.T) {
	requireQemuImg(t)
	const jobs, workers, kills = 200, 4, 12
	d := newDirs(t)
	disk := filepath.Join(d.in, "small.raw")
	makeRaw(t, disk, 256<<10, 9)
	for i := range jobs {
		d.queueManifest(t, d.manifest(t, fmt.Sprintf("job-%03d", i), "qcow2", [2]string{disk, "raw"}))
	}
	traceLog := filepath.Join(t.TempDir(), "trace.log")
	appendLine := func(s string) {
		f, err := os.OpenFile(traceLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, s)
		f.Close()
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), roleEnv+"=worker", "TRACE_LOG="+traceLog, "WF="+d.wf, "IN="+d.in, "OUT="+d.out)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	procs := make([]*exec.Cmd, workers)
	for i := range procs {
		procs[i] = start()
	}
	count := func(top string) int {
		m, _ := filepath.Glob(filepath.Join(d.wf, top, "*", "job-*[0-9].json"))
		return len(m)
	}
	processed := func() int { return count(protocol.DirProcessed) }
	finished := func() int { return processed() + count(protocol.DirFailed) }
	r := rand.New(rand.NewPCG(42, 7))
	killed := map[int]bool{}
	for k := 0; k < kills && processed() < jobs; k++ {
		time.Sleep(time.Duration(100+r.IntN(300)) * time.Millisecond)
		i := r.IntN(workers)
		procs[i].Process.Kill()
		procs[i].Wait()
		appendLine(fmt.Sprintf("killed - %d", procs[i].Process.Pid))
		killed[procs[i].Process.Pid] = true
		procs[i] = start()
	}
	for deadline := time.Now().Add(2 * time.Minute); finished() < jobs; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("only %d of %d jobs finished before the deadline", finished(), jobs)
			break
		}
	}
	for _, p := range procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			t.Errorf("worker %d exit: %v", p.Process.Pid, err)
		}
	}

	// Every job file anywhere in the workflow directory, by job id.
	where := map[string][]string{}
	filepath.WalkDir(d.wf, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() && (e.Name() == protocol.DirStats || e.Name() == protocol.DirWorkers) {
			return filepath.SkipDir
		}
		if err == nil && !e.IsDir() {
			if id, _, ok := protocol.JobFile(e.Name()); ok {
				where[id] = append(where[id], p)
			}
		}
		return nil
	})
	for i := range jobs {
		id := fmt.Sprintf("job-%03d", i)
		all := where[id]
		if len(all) != 1 || !strings.Contains(all[0], "/processed/") {
			t.Errorf("%s: want exactly processed/<date>/%s.json, found %v", id, id, all)
		}
		delete(where, id)
	}
	if len(where) != 0 {
		t.Errorf("unexpected job files: %v", where)
	}
	checkTrace(t, traceLog)
	// A stopped worker removed its heartbeat; a killed one's is left to
	// grow old (if it lived long enough to write one: under load a worker
	// may be killed before that).
	host, _ := os.Hostname()
	hb, _ := filepath.Glob(filepath.Join(d.wf, protocol.DirWorkers, "*.json"))
	left := map[string]bool{}
	for _, p := range hb {
		left[filepath.Base(p)] = true
	}
	for _, p := range procs {
		if name := protocol.HeartbeatName(host, p.Process.Pid); left[name] {
			t.Errorf("worker %d stopped, but its heartbeat %s is left", p.Process.Pid, name)
		}
	}
	for pid := range killed {
		delete(left, protocol.HeartbeatName(host, pid))
	}
	if len(left) > 0 {
		t.Errorf("heartbeat files of no killed worker: %v", left)
	}
	t.Logf("%d heartbeat files left by %d killed workers", len(hb), len(killed))
}

func checkTrace(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	open := map[string]string{} // job -> pid converting it
	killed := map[string]bool{}
	starts := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			t.Fatalf("trace line %q", sc.Text())
		}
		ev, job, pid := fields[0], fields[1], fields[2]
		switch ev {
		case "start":
			starts++
			if other, ok := open[job]; ok && !killed[other] {
				t.Errorf("%s converted by %s while %s was still converting it", job, pid, other)
			}
			open[job] = pid
		case "end":
			if open[job] == pid {
				delete(open, job)
			}
		case "killed":
			killed[pid] = true
		}
	}
	if starts < 200 {
		t.Errorf("trace has %d conversion starts, want ≥ 200", starts)
	}
	t.Logf("%d conversion starts for 200 jobs (restarts after kills included)", starts)
}
