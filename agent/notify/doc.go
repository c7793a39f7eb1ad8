// Package notify sends the agent's notifications: a versioned JSON event
// POSTed to each `notify "webhook"` block that subscribes to it when a
// migration is migrated (its domain defined), fails (a step failed, or
// the converter failed its job), stalls (its job shows no progress) or
// drifts (an artifact state recorded is gone or changed).
//
// Transitions are derived, not reported: from every state the agent's
// store loads or writes (reconcile.Store.Observe) and from every plan.
// A ledger kept beside the state says which transitions were already
// queued; one that is new is written to an outbox directory (one file
// per event and webhook, atomically) before the ledger moves on. So an
// event is queued at least once whatever instant the agent is killed at:
// the next load of the state finds what the ledger lacks. Each event's id
// is derived from its campaign, address, type and what makes the
// transition unique (the time the domain was defined, the failure's
// time, the job), so the same transition queued again, or noticed by
// another agent of the same campaign, carries the same id and receivers
// drop it.
//
// Delivery runs apart from the reconcile loop, one sender per webhook in
// the order events were queued, retried with capped exponential backoff
// until the receiver answers 2xx; only then is the event's file deleted.
// With a secret, each request carries an HMAC-SHA256 signature of its
// timestamp and body (Sign, Verify).
//
// Everything an event says comes from redacted plans and state and is
// redacted again; the webhook's secret and a sensitive URL are never
// logged or written. It imports reconcile and schema, never the agent.
package notify
