package vsphere

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
)

// A simulator in a child process (the test binary run again with
// childEnv set) can be frozen with SIGSTOP, as a hung vCenter is: its
// sockets stay open, the kernel keeps accepting connections, and nothing
// answers.
const childEnv = "HYPERAGENT_VSPHERE_TEST_CHILD_SIM"

type childInfo struct {
	URL, Username, Password, Thumbprint string
}

// serveChild runs the child's simulator: DC0_H0_VM0 exportable, its disk
// seeded with content(seed, size) bytes. It prints a childInfo line and
// serves until stdin closes.
func serveChild() int {
	size, err := strconv.Atoi(os.Getenv(childEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child simulator:", err)
		return 2
	}
	srv, err := vcsimtest.Start(vcsimtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child simulator:", err)
		return 1
	}
	defer srv.Close()
	ref, err := srv.FindVM("DC0_H0_VM0")
	if err == nil {
		err = srv.MakeExportable(ref)
	}
	if err == nil {
		_, err = srv.Seed(ref, 0, bytes.NewReader(content(uint64(size), size)))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child simulator:", err)
		return 1
	}
	b, _ := json.Marshal(childInfo{URL: srv.URL.String(), Username: srv.Username, Password: srv.Password, Thumbprint: srv.Thumbprint})
	fmt.Println(string(b))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// childSim is a running child simulator.
type childSim struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	srv   *vcsimtest.Server // only the connection fields are set
}

// startChildSim starts a child simulator whose VM disk holds
// content(size, size) bytes. Cleanup resumes it if frozen and stops it.
func startChildSim(t *testing.T, size int) *childSim {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(size))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childSim{cmd: cmd, stdin: stdin}
	t.Cleanup(c.stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child simulator did not start: %v", err)
	}
	var info childInfo
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatalf("child simulator said %q: %v", line, err)
	}
	u, err := url.Parse(info.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.srv = &vcsimtest.Server{URL: u, Username: info.Username, Password: info.Password, Thumbprint: info.Thumbprint}
	return c
}

func (c *childSim) freeze() error { return c.cmd.Process.Signal(syscall.SIGSTOP) }

func (c *childSim) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGCONT)
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// within runs f and waits for it at most d, failing the test when f is
// still running then: a hang, not a slow run.
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s still running after %s", what, d)
	}
	panic("unreachable")
}
