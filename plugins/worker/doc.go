// Package worker is hyperagent's own converter daemon: the consumer side of
// PROTOCOL.md (§1, §5). It claims jobs by rename, verifies input checksums,
// converts with qemu-img, checks the result, writes reports and error
// sidecars atomically, and takes back jobs whose owner died.
package worker
