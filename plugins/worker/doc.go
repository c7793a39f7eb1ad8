// Package worker is hyperagent's own converter daemon: the consumer side of
// docs/protocol.md (sections 1 and 12). It claims jobs by rename (RENAME_NOREPLACE, or
// link+unlink where the filesystem lacks it, so a clash is detected and the
// job renamed <id>_<YYYYMMDD_HHMMSS>), refuses inputs and outputs outside its
// roots, verifies input checksums (where the manifest has them; a disk
// without one is reported as not verified) while qemu-img converts (reading the
// input with io_uring where qemu-img may, with -m coroutines sized to its
// cores, compressing with zstd where qemu-img has it) and while the output
// is fsynced and checked, renames an output into place only after all
// three passed and the input is still the file it was, and writes the
// report or error sidecar atomically before moving the manifest into its
// completion-date folder. A checksum the export computed while writing the
// file is taken without reading the file again while the file's recorded
// identity (device, inode, size, mtime, ctime) still holds (identity.go).
//
// Several workers, on several hosts, may share one directory: each claimed
// job has a lease file (processing/.<name>.lease), created before the claim
// and renewed by its holder; a job whose lease expired is handed back to
// the queue by exactly one other worker, so a job whose worker died is
// never lost, and a worker that lost a job stops at once and touches
// nothing of the new holder's (lease.go states the rules). Each worker
// keeps a heartbeat file in <workflow_dir>/.workers/ saying what it serves
// and can run (protocol.Heartbeat), removed when it stops, and beside each
// job it converts a progress file (processing/.<name>.progress.json,
// protocol.Progress) with the bytes converted from qemu-img convert -p's
// output, removed with the job (progress.go).
//
// Nothing queued is ignored for good and nothing hostile gets it stuck
// (queue.go, limits.go): an entry whose name is no job id is moved aside
// with a warning; a job file that is a symlink, FIFO or directory fails
// with its sidecar, never followed or opened; one that does not parse yet
// is left to settle before it fails; the job file's size, a job's wall-clock
// time (its qemu-img process group killed at the limit) and a disk's
// virtual size are capped, each failing the job with a sidecar naming the
// limit. Finished jobs never overwrite one another: a name taken in the date
// folder gets the daemon's clash name, manifest and sidecar alike.
//
// It has no libguestfs: inspect and fix stages fail the job unless skipped
// explicitly, and are then reported as skipped, never as done.
package worker
