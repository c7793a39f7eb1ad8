// Command agent measures `hyperagent agent` as it runs, against the real
// parts: a files source over small VMDKs made with qemu-img, the hyper2kvm
// watch directory served by a real `hyperagent worker`, and libvirt's test
// driver through the running libvirtd.
//
//	go run ./bench/agent -mode=latency [-n=40]
//	    From a job's sidecar landing (the worker's report, by its mtime) to
//	    the agent's state recording the job's outputs: p50, p99 and max,
//	    with file events and with the periodic resync alone (as on NFS).
//	go run ./bench/agent -mode=scale [-n=10000]
//	    The agent's pass time and memory (VmRSS, VmHWM) while it plans n
//	    migrations (auto_apply off), over several passes.
//	go run ./bench/agent -mode=idle [-n=1000] [-for=5m]
//	    The CPU an idle agent uses over -for once its n migrations are
//	    converged (utime+stime from /proc).
//
// HYPERAGENT_BIN names a built binary (default: go build ./cmd/hyperagent).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hypersdk/hyperagent/agent"
)

func main() {
	mode := flag.String("mode", "latency", "latency | scale | idle")
	n := flag.Int("n", 0, "migrations (default: 40, 10000, 1000 by mode)")
	dur := flag.Duration("for", 5*time.Minute, "idle: how long to measure")
	flag.Parse()
	var err error
	switch *mode {
	case "latency":
		err = latency(or(*n, 40))
	case "scale":
		err = scale(or(*n, 10000))
	case "idle":
		err = idle(or(*n, 1000), *dur)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/agent:", err)
		os.Exit(1)
	}
}

func or(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

// campaign is a work directory with n bare VMDKs and a repo migrating them.
type campaign struct {
	dir, bin, repo string
	n              int
	procs          []*exec.Cmd
}

func newCampaign(n int, agentBlock string) (*campaign, error) {
	dir, err := os.MkdirTemp(os.Getenv("TMPDIR"), "hyperagent-bench-agent-")
	if err != nil {
		return nil, err
	}
	c := &campaign{dir: dir, n: n, repo: filepath.Join(dir, "repo")}
	for _, d := range []string{"nas", "wf", "out", "exports", "images", "repo", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if c.bin = os.Getenv("HYPERAGENT_BIN"); c.bin == "" {
		c.bin = filepath.Join(dir, "hyperagent")
		build := exec.Command("go", "build", "-o", c.bin, "./cmd/hyperagent")
		build.Dir = repoRoot()
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	// One small VMDK, hard-linked n times: every VM is a file of its own
	// name, and making 10,000 costs no disk.
	first := filepath.Join(dir, "nas", "vm-00000.vmdk")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "vmdk", first, "4M").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("qemu-img: %v\n%s", err, out)
	}
	for i := 1; i < n; i++ {
		if err := os.Link(first, filepath.Join(dir, "nas", fmt.Sprintf("vm-%05d.vmdk", i))); err != nil {
			return nil, err
		}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%q", fmt.Sprintf("vm-%05d", i))
	}
	hcl := fmt.Sprintf(`%s
source "files" "nas" {
  dir = "%[2]s/nas"
}
converter "hyper2kvm" "local" {
  workflow_dir = "%[2]s/wf"
  output_dir   = "%[2]s/out"
}
target "libvirt" "test" {
  uri         = "test:///default"
  storage_dir = "%[2]s/images"
}
migration "vm" {
  for_each  = toset([%[3]s])
  source    = source.files.nas
  converter = converter.hyper2kvm.local
  target    = target.libvirt.test
  vm        = "${each.key}.vmdk"
  export { dir = "%[2]s/exports" }
  convert {
    fix { enabled = false }
  }
  domain {
    name   = "bench-${each.key}"
    memory = "64MiB"
    vcpus  = 1
  }
}
`, agentBlock, dir, strings.Join(names, ", "))
	return c, os.WriteFile(filepath.Join(c.repo, "main.hcl"), []byte(hcl), 0o644)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return wd
}

func (c *campaign) start(env []string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	log, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", args[0], len(c.procs))))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c.procs = append(c.procs, cmd)
	return cmd, nil
}

func (c *campaign) worker() error {
	_, err := c.start(nil, "worker", "-workflow-dir="+filepath.Join(c.dir, "wf"), "-input-root="+filepath.Join(c.dir, "nas"),
		"-input-root="+filepath.Join(c.dir, "exports"), "-output-root="+filepath.Join(c.dir, "out"), "-jobs=1", "-rescan=1s")
	return err
}

func (c *campaign) agent(env ...string) (*exec.Cmd, error) {
	return c.start(append(env, "HYPERAGENT_LOG=info"), "agent", "-config="+c.repo, "-state-dir="+filepath.Join(c.dir, "state"),
		"-listen=unix:"+filepath.Join(c.dir, "agent.sock"))
}

// close stops every process it started and removes the directory.
func (c *campaign) close() {
	for _, p := range c.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = p.Process.Kill()
		}
	}
	_ = os.RemoveAll(c.dir)
}

// state is what the bench reads of the agent's state file.
type state struct {
	Migrations map[string]struct {
		Job *struct {
			ID string `json:"id"`
		} `json:"job"`
		Outputs []json.RawMessage `json:"outputs"`
		Domain  *json.RawMessage  `json:"domain"`
	} `json:"migrations"`
}

func (c *campaign) state() (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(c.dir, "state", "state.json"))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// client is the agent's status API, over its unix socket.
func (c *campaign) client() (*agent.Client, error) {
	return agent.NewClient("unix:"+filepath.Join(c.dir, "agent.sock"), nil)
}

func latency(n int) error {
	for _, run := range []struct {
		name  string
		block string
		env   []string
	}{
		{"file events", `agent {
  auto_apply = true
  interval   = "1h"
}`, nil},
		{"resync only (every 2s)", `agent {
  auto_apply = true
  interval   = "2s"
}`, []string{"HYPERAGENT_AGENT_NO_EVENTS=1"}},
	} {
		lat, err := latencyRun(n, run.block, run.env)
		if err != nil {
			return fmt.Errorf("%s: %w", run.name, err)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		fmt.Printf("%-24s n=%d  p50 %v  p99 %v  max %v\n", run.name, len(lat),
			lat[len(lat)/2].Round(time.Millisecond), lat[(len(lat)*99)/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	}
	return nil
}

// latencyRun lets the agent and one worker (one job at a time, so that
// sidecars land one by one) migrate n VMs, and times each from its
// report's mtime to the state poll that first sees its outputs.
func latencyRun(n int, block string, env []string) ([]time.Duration, error) {
	c, err := newCampaign(n, block)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if err := c.worker(); err != nil {
		return nil, err
	}
	if _, err := c.agent(env...); err != nil {
		return nil, err
	}
	seen := map[string]time.Time{}
	deadline := time.Now().Add(10 * time.Minute)
	for len(seen) < n {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d converted after 10 minutes (logs in %s)", len(seen), n, c.dir)
		}
		st, err := c.state()
		now := time.Now()
		if err == nil {
			for a, ms := range st.Migrations {
				if _, ok := seen[a]; !ok && ms.Outputs != nil && ms.Job != nil {
					seen[a] = now
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	st, _ := c.state()
	var out []time.Duration
	for a, at := range seen {
		rep, err := filepath.Glob(filepath.Join(c.dir, "wf", "processed", "*", st.Migrations[a].Job.ID+"*.report.json"))
		if err != nil || len(rep) == 0 {
			return nil, fmt.Errorf("%s: no report for job %s", a, st.Migrations[a].Job.ID)
		}
		fi, err := os.Stat(rep[0])
		if err != nil {
			return nil, err
		}
		out = append(out, at.Sub(fi.ModTime()))
	}
	return out, nil
}

func scale(n int) error {
	c, err := newCampaign(n, `agent {
  auto_apply = false
  interval   = "5s"
}`)
	if err != nil {
		return err
	}
	defer c.close()
	start := time.Now()
	cmd, err := c.agent()
	if err != nil {
		return err
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	var passes []float64
	last := 0
	for len(passes) < 5 {
		if time.Since(start) > 15*time.Minute {
			return fmt.Errorf("fewer than 5 passes in 15 minutes (logs in %s)", c.dir)
		}
		time.Sleep(500 * time.Millisecond)
		s, err := api.Status(context.Background())
		if err != nil {
			continue
		}
		if s.Passes > last {
			last = s.Passes
			passes = append(passes, s.LastPassTook.Seconds())
			if len(passes) == 1 {
				fmt.Printf("first pass done %v after start; %v migrations\n", time.Since(start).Round(time.Millisecond), s.Phases)
			}
		}
	}
	rss, hwm := memory(cmd.Process.Pid)
	sort.Float64s(passes)
	fmt.Printf("n=%d  pass time: min %.2fs  median %.2fs  max %.2fs  VmRSS %d MiB  VmHWM %d MiB\n",
		n, passes[0], passes[len(passes)/2], passes[len(passes)-1], rss>>20, hwm>>20)
	return nil
}

func memory(pid int) (rss, hwm int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmRSS:":
				rss = v << 10
			case "VmHWM:":
				hwm = v << 10
			}
		}
	}
	return rss, hwm
}

func idle(n int, dur time.Duration) error {
	c, err := newCampaign(n, `agent {
  auto_apply = true
}`)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.worker(); err != nil {
		return err
	}
	cmd, err := c.agent()
	if err != nil {
		return err
	}
	start := time.Now()
	for {
		if time.Since(start) > 30*time.Minute {
			return fmt.Errorf("not converged after 30 minutes (logs in %s)", c.dir)
		}
		time.Sleep(time.Second)
		st, err := c.state()
		if err != nil {
			continue
		}
		done := 0
		for _, ms := range st.Migrations {
			if ms.Domain != nil {
				done++
			}
		}
		if done == n {
			break
		}
	}
	fmt.Printf("converged %d migrations in %v; measuring %v idle\n", n, time.Since(start).Round(time.Second), dur)
	time.Sleep(5 * time.Second) // let the last pass end
	t0, w0 := cpu(cmd.Process.Pid), time.Now()
	time.Sleep(dur)
	t1, w1 := cpu(cmd.Process.Pid), time.Now()
	used := t1 - t0
	fmt.Printf("idle agent, %d converged migrations: %v CPU in %v (%.2f%% of one core)\n",
		n, used.Round(time.Millisecond), w1.Sub(w0).Round(time.Second), 100*used.Seconds()/w1.Sub(w0).Seconds())
	return nil
}

// cpu is the process's user+system time.
func cpu(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
