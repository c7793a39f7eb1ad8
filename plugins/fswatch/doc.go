// Package fswatch is the one watch loop of hyperagent's long-running parts
// (the agent, the worker, the converter and files plugins): fsnotify on
// directories — never on files, which editors and daemons replace by
// rename —, events gathered into one call per burst, and a periodic resync
// that is the truth, since events are hints: NFS and other network
// filesystems deliver none for changes made by other hosts, and a burst
// can overflow the kernel's queue. Callers re-read what they watch on
// every call; a call says only "look again".
//
// It must not know what is watched or why: no engine, no protocol.
package fswatch
