// Package sdnotify is how hyperagent's services (the agent and the worker)
// talk to systemd: READY=1 once they serve, STATUS= lines for
// `systemctl status`, WATCHDOG=1 pings, RELOADING=1 with MONOTONIC_USEC
// while a reload runs, and STOPPING=1. Outside systemd (no NOTIFY_SOCKET)
// every call does nothing. The watchdog interval is read once: the
// service's own loop pings, so that a wedged loop stops the pings and
// systemd restarts it.
package sdnotify
