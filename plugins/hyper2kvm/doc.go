// Package hyper2kvm is the Converter that hands jobs to the hyper2kvm daemon
// (or hyperagent's own worker) through the watch-directory protocol of
// PROTOCOL.md: atomic, idempotent submission of Artifact Manifests, one-pass
// observation of the four directories and every date folder, stalled-job
// detection with the daemon unit's systemd state, withdrawal, and an
// fsnotify Watcher.
//
// The manifest, report and layout types live in the protocol subpackage,
// which the worker imports too. This package only ever writes into
// to_be_processed/ (submission) and withdrawn/ (a job taken back before any
// daemon claimed it: renamed there rather than deleted, for audit; daemons
// never look there). It never touches a claimed job.
package hyper2kvm
