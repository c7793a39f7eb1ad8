package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen makes a unixgram socket and points NOTIFY_SOCKET at it, as
// systemd does for a Type=notify service.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestDatagrams(t *testing.T) {
	c := listen(t)
	n := New(nil)
	n.Ready("0 migrations")
	if got := read(t, c); got != "READY=1\nSTATUS=0 migrations" {
		t.Errorf("ready: %q", got)
	}
	n.Reloading()
	got := read(t, c)
	v, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
	if usec, err := strconv.ParseInt(v, 10, 64); !ok || err != nil || usec <= 0 {
		t.Errorf("reloading: %q", got)
	}
	n.Watchdog()
	if got := read(t, c); got != "WATCHDOG=1" {
		t.Errorf("watchdog: %q", got)
	}
	n.Stopping("stopping")
	if got := read(t, c); got != "STOPPING=1\nSTATUS=stopping" {
		t.Errorf("stopping: %q", got)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "4000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if got := WatchdogInterval(); got != 2*time.Second {
		t.Errorf("interval %v, want half of 4s", got)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if got := WatchdogInterval(); got != 0 {
		t.Errorf("another process's watchdog: %v, want none", got)
	}
}
