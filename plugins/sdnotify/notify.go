package sdnotify

import (
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Notifier sends notifications to the socket systemd names in
// NOTIFY_SOCKET.
type Notifier struct {
	log hclog.Logger
}

// New returns a Notifier that logs failed sends at debug level.
func New(log hclog.Logger) *Notifier {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Notifier{log: log}
}

func (n *Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Debug("sd_notify failed", "state", state, "error", err)
	}
}

// Ready says the service serves, with a status line.
func (n *Notifier) Ready(status string) { n.send("READY=1\nSTATUS=" + status) }

// Status updates the status line.
func (n *Notifier) Status(status string) { n.send("STATUS=" + status) }

// Watchdog pings the watchdog.
func (n *Notifier) Watchdog() { n.send("WATCHDOG=1") }

// Reloading says a reload started; Ready ends it.
func (n *Notifier) Reloading() {
	var ts unix.Timespec
	usec := int64(0)
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
		usec = ts.Nano() / 1000
	}
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", usec))
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping(status string) { n.send("STOPPING=1\nSTATUS=" + status) }

// WatchdogInterval is how often to ping: half of the WatchdogSec systemd
// set for this process, or 0 when there is no watchdog.
func WatchdogInterval() time.Duration {
	iv, err := daemon.SdWatchdogEnabled(false)
	if err != nil || iv <= 0 {
		return 0
	}
	return iv / 2
}
