// Package agent is the long-running service (`hyperagent agent`): it watches
// the config and the converters' directories (fsnotify plus a periodic
// rescan), reconciles level-based, talks to systemd (READY, STATUS,
// WATCHDOG, RELOADING, STOPPING) and serves a status API.
//
// It may import reconcile and plugins; nothing imports it but the CLI.
package agent
