// Package fsutil owns the few file-system mechanisms every writer in
// hyperagent shares: the atomic, durable write (temp file in the same
// directory, fsync, rename, fsync of the directory), the directory fsync
// itself, a cancellable copy with progress, and how byte counts are shown.
// Plugins, the engine and the CLI call it instead of keeping copies, so a
// durability fix lands everywhere at once.
//
// It imports nothing of ours.
package fsutil
