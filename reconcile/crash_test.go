package reconcile

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// crashChildEnv selects the child role of the test binary: it applies the
// crash world in the directory the variable names, then exits.
const crashChildEnv = "HYPERAGENT_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

var crashNames = []string{"db", "app[a]", "app[b]", "web[a]", "web[b]", "web[c]", "batch", "cache"}

// crashWorld is the config and file-backed fakes the child and the parent
// both build over one directory.
type crashWorld struct {
	cfg   *schema.Config
	src   *plugintest.Source
	conv  *plugintest.Converter
	tgt   *plugintest.Target
	set   *plugins.Set
	store *Store
}

func newCrashWorld(dir string) (*crashWorld, error) {
	w := &crashWorld{}
	fakes := filepath.Join(dir, "fakes")
	var err error
	if w.src, err = plugintest.NewSource("src", fakes); err != nil {
		return nil, err
	}
	if w.conv, err = plugintest.NewConverter("conv", fakes); err != nil {
		return nil, err
	}
	if w.tgt, err = plugintest.NewTarget("kvm", fakes); err != nil {
		return nil, err
	}
	w.src.Delay, w.src.MaxParallel = 3*time.Millisecond, 2
	w.conv.Delay, w.conv.MaxParallel = time.Millisecond, 3
	w.tgt.Delay = time.Millisecond
	w.set = plugins.NewSet()
	w.set.Sources[srcAddr.String()] = w.src
	w.set.Converters[convAddr.String()] = w.conv
	w.set.Targets[tgtAddr.String()] = w.tgt
	w.cfg = &schema.Config{Dir: dir, Digest: "crash", Agent: schema.AgentConfig{Parallelism: 3, StateDir: filepath.Join(dir, "state")}}
	for _, n := range crashNames {
		m := newMigration(dir, n)
		switch m.Addr.Name {
		case "app":
			m.DependsOn = []addrs.Migration{{Name: "db"}}
		case "web":
			m.DependsOn = []addrs.Migration{{Name: "app"}}
		}
		m.Digest = digestOf(Digests(m))
		w.cfg.Migrations = append(w.cfg.Migrations, m)
	}
	w.store, err = OpenStore(w.cfg.Agent.StateDir)
	return w, err
}

// crashChild is one apply run; its exit code says how it ended.
func crashChild(dir string) int {
	w, err := newCrashWorld(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 10
	}
	if _, err := w.store.Lock("apply"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 11
	}
	defer w.store.Unlock()
	// The parent times its kill from this line, so that kills land in the
	// apply and not in the process start-up (a second under -race).
	fmt.Println(childReady)
	st, err := w.store.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 12
	}
	ctx := context.Background()
	p, err := MakePlan(ctx, w.cfg, st, w.set, PlanRequest{Refresh: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 13
	}
	e := &Engine{Config: w.cfg, Plugins: w.set, Store: w.store, Log: hclog.NewNullLogger(), PollInterval: time.Millisecond}
	res, err := e.Apply(ctx, st, p, ApplyOptions{})
	if err != nil || !res.OK() {
		fmt.Fprintf(os.Stderr, "apply: %v %+v\n", err, res)
		return 1
	}
	fmt.Println(childDone)
	return 0
}

// The lines a child prints once it holds the lock and once its apply has
// returned. The parent times its kill from the first, so kills land in
// the apply and not in process start-up, and a kill after the second
// (the process exiting: about a second under -race) does not count.
const (
	childReady = "crash child: locked"
	childDone  = "crash child: applied"
)

// runChild runs one apply in a child process and SIGKILLs it killAfter
// after it took the lock (never, when negative). killed says the kill
// landed before the apply returned; work is how long the apply ran.
func runChild(dir string, killAfter time.Duration) (killed bool, work time.Duration, err error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out := &lockedBuffer{}
	cmd.Stderr = out
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return false, 0, err
	}
	if err := cmd.Start(); err != nil {
		return false, 0, err
	}
	ready := make(chan time.Time, 1)
	var doneAt time.Time // written before read closes
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			switch sc.Text() {
			case childReady:
				ready <- time.Now()
			case childDone:
				doneAt = time.Now()
			}
			out.Write(append(sc.Bytes(), '\n'))
		}
	}()
	var readyAt time.Time
	var kill <-chan time.Time
	select {
	case readyAt = <-ready:
		if killAfter >= 0 {
			kill = time.After(killAfter)
		}
	case <-read:
	}
	sent := false
	select {
	case <-read:
	case <-kill:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		sent = true
		<-read
	}
	werr := cmd.Wait()
	switch {
	case sent && doneAt.IsZero():
		return true, 0, nil
	case readyAt.IsZero() || doneAt.IsZero() || (werr != nil && !sent):
		return false, 0, fmt.Errorf("child apply failed: %v\n%s", werr, out.String())
	}
	return false, doneAt.Sub(readyAt), nil
}

// TestCrashConverges SIGKILLs applies (child processes against file-backed
// fakes) at random instants until 100 kills landed mid-run. Each world is
// killed until a run finishes on its own, so every world converges through
// re-runs after kills. After every kill the state must load; each
// converged world must plan nothing, and across all its runs every export
// and every submission happened exactly once.
func TestCrashConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns ~130 processes; run without -short")
	}
	const wantKills, workers = 100, 4
	_, full, err := runChild(t.TempDir(), -1)
	if err != nil {
		t.Fatal(err)
	}
	var kills, worlds atomic.Int64
	var wg sync.WaitGroup
	for wk := 0; wk < workers; wk++ {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(wk)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for kills.Load() < wantKills && !t.Failed() {
				dir := t.TempDir()
				worlds.Add(1)
				for kills.Load() < wantKills {
					killed, _, err := runChild(dir, time.Duration(rng.Int64N(int64(full))))
					if err != nil {
						t.Error(err)
						return
					}
					s, _ := OpenStore(filepath.Join(dir, "state"))
					if _, err := s.Load(); err != nil {
						t.Errorf("%s: state does not load after a kill: %v", dir, err)
						return
					}
					if !killed {
						break
					}
					kills.Add(1)
				}
				if _, _, err := runChild(dir, -1); err != nil {
					t.Error(err)
					return
				}
				checkCrashWorld(t, dir)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d kills over %d worlds; one uninterrupted apply takes %v", kills.Load(), worlds.Load(), full)
}

func checkCrashWorld(t *testing.T, dir string) {
	w, err := newCrashWorld(dir)
	if err != nil {
		t.Error(err)
		return
	}
	st, err := w.store.Load()
	if err != nil {
		t.Error(err)
		return
	}
	for _, m := range w.cfg.Migrations {
		a := m.Addr.String()
		if e, s := w.src.Exports(a), w.conv.Submits(a); e != 1 || s != 1 {
			t.Errorf("%s: %s exported %d times, submitted %d times; want exactly once", dir, a, e, s)
		}
		if ms := st.Migrations[a]; ms == nil || ms.Domain == nil {
			t.Errorf("%s: %s is not defined in state", dir, a)
		}
	}
	p, err := MakePlan(context.Background(), w.cfg, st, w.set, PlanRequest{Refresh: true})
	if err != nil {
		t.Error(err)
		return
	}
	if p.HasChanges() {
		t.Errorf("%s: plan after convergence has changes:\n%s", dir, renderString(p))
	}
}

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
