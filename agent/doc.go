// Package agent is the long-running service (`hyperagent agent`). It is
// level-based, like a Kubernetes controller: a file event, SIGHUP, the
// periodic resync or a migration's retry timer only marks the campaign
// dirty; the loop then runs one pass (reconcile/pass) over the whole
// campaign — re-reading the configuration, observing, planning and, with
// auto_apply, applying — one pass at a time, however many triggers came.
//
// A configuration that does not load is reported (one log record per
// diagnostic, and in Status) and the last good one keeps running. A pass
// takes the state lock and releases it when it ends, so people can run
// plan or apply between passes; in the agent's passes a submitted job is
// left to later passes rather than awaited, so that no pass holds the lock
// while a conversion runs. A migration that fails is retried with capped
// exponential backoff; one that fails terminally waits for its
// configuration or its source VM to change.
//
// It tells systemd READY=1 after the first good load, STATUS= with counts
// per phase, WATCHDOG=1 from the loop (only while passes make progress, so
// a wedged pass stops the pings), RELOADING=1 and STOPPING=1.
//
// It serves a status API (api.go: versioned JSON over a unix socket, or
// TCP with a bearer token outside loopback) and Prometheus metrics
// (metrics.go), both computed from what the passes report as they run
// (live.go), and a status page for browsers at GET / (web.go); client.go
// is the API's client, for `hyperagent status`. Its notifications
// (agent/notify) are derived from every state its store loads or writes
// and from every plan, and delivered apart from the loop.
//
// It may import reconcile and plugins; nothing imports it but the CLI.
package agent
