package pass

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

	"github.com/hypersdk/hyperagent/reconcile"
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

// crashMigrations is the world every crash run applies: eight
// migrations in three waves.
var crashMigrations = []string{
	"db", `app depends_on = [migration.db]
  for_each = toset(["a", "b"])`, `web depends_on = [migration.app]
  for_each = toset(["a", "b", "c"])`, "batch", "cache",
}

func crashHCL(dir string) string {
	return worldHCL(dir, map[string]string{
		"source":    "  max_parallel = 2\n  delay_ms = 3\n",
		"converter": "  max_parallel = 3\n  delay_ms = 1\n",
		"target":    "  delay_ms = 1\n",
	}, crashMigrations...)
}

// crashChild is one apply pass; its exit code says how it ended.
func crashChild(dir string) int {
	w, err := openWorld(context.Background(), dir, nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 10
	}
	defer w.Close()
	res, err := w.Run(context.Background(), Request{Mode: ModeApply, Operation: "apply",
		Plan: reconcile.PlanRequest{Refresh: true},
		// The parent times its kill from this line, so that kills land in
		// the apply and not in the process start-up (a second under -race).
		Planned: func(*reconcile.Plan) { fmt.Println(childReady) }})
	if err != nil || (res.Applied == nil && res.Plan.HasChanges()) || (res.Applied != nil && !res.Applied.OK()) {
		fmt.Fprintf(os.Stderr, "apply: %v %+v\n", err, res.Applied)
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
	childReady = "crash child: planned, lock held"
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

// TestCrashConverges SIGKILLs apply passes (child processes against
// file-backed fakes) at random instants until 100 kills landed mid-run. Each world is
// killed until a run finishes on its own, so every world converges through
// re-runs after kills. After every kill the state must load; each
// converged world must plan nothing, and across all its runs every export
// and every submission happened exactly once.
func TestCrashConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns ~130 processes; run without -short")
	}
	const wantKills, workers = 100, 4
	// The kills are spread over the time one whole apply takes: the
	// quickest of three, since the first pays for cold caches.
	full := time.Duration(1 << 62)
	for range 3 {
		first := t.TempDir()
		writeWorld(t, first, crashHCL(first))
		_, took, err := runChild(first, -1)
		if err != nil {
			t.Fatal(err)
		}
		full = min(full, took)
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
				writeWorld(t, dir, crashHCL(dir))
				worlds.Add(1)
				for kills.Load() < wantKills {
					killed, _, err := runChild(dir, time.Duration(rng.Int64N(int64(full))))
					if err != nil {
						t.Error(err)
						return
					}
					s, _ := reconcile.OpenStore(filepath.Join(dir, ".hyperagent"))
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
	w, err := openWorld(context.Background(), dir, nil, nil)
	if err != nil {
		t.Error(err)
		return
	}
	defer w.Close()
	src, conv, _ := fakes(w)
	res, err := w.Run(context.Background(), Request{Mode: ModePlan, Operation: "plan", Plan: reconcile.PlanRequest{Refresh: true}})
	if err != nil {
		t.Error(err)
		return
	}
	st, err := w.Store.Load()
	if err != nil {
		t.Error(err)
		return
	}
	for _, m := range w.Config.Migrations {
		a := m.Addr.String()
		if e, s := src.Exports(a), conv.Submits(a); e != 1 || s != 1 {
			t.Errorf("%s: %s exported %d times, submitted %d times; want exactly once", dir, a, e, s)
		}
		if ms := st.Migrations[a]; ms == nil || ms.Domain == nil {
			t.Errorf("%s: %s is not defined in state", dir, a)
		}
	}
	if res.Plan.HasChanges() || len(w.Config.Migrations) != 8 {
		b, _ := res.Plan.Encode()
		t.Errorf("%s: plan after convergence has changes (or not 8 migrations):\n%s", dir, b)
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
