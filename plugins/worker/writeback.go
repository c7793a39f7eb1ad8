package worker

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Durability with one flush. An output is renamed into place only after an
// fsync of it has returned (produce, convertDisk), and that fsync is the
// only flush the output gets: qemu-img converts with its default cache mode
// for convert, "unsafe", which never flushes.
//
// So that this fsync has little left to write, writeback of what qemu-img
// wrote is started every writebackInterval, once the output has grown by
// writebackBytes, with sync_file_range(SYNC_FILE_RANGE_WRITE): it queues the
// dirty pages for writing and returns, without waiting for them and without
// flushing the device's cache. Measured on a 1 GiB disk here (2-core VM,
// virtio disk, 537 MB written), the final fsync took 0.20-0.32 s with no
// writeback started during the conversion and 0.01-0.06 s with it, for no
// more CPU; an fdatasync every 32 MiB instead (a device flush each, waited
// for beside qemu-img's writes) left about as little to the final fsync
// but slowed the conversion (best of five: 0.63 s against 0.51 s).
//
// Writeback errors are not lost: sync_file_range without its wait flags
// neither waits nor reports them, and nothing else syncs the file before
// the final fsync, so an error met by early writeback has been seen by no
// one, and the kernel reports it to that fsync whatever descriptor it runs
// on (errseq: an error no one has seen is reported to the next fsync).
const (
	writebackInterval = 100 * time.Millisecond
	writebackBytes    = 32 << 20
)

// writebackWhileWriting starts writeback of the file at path as it grows,
// until the returned stop is called; stop returns the error that ended the
// loop early, if one did.
func writebackWhileWriting(path string, interval time.Duration) (stop func() error) {
	done := make(chan struct{})
	result := make(chan error, 1)
	t := time.NewTicker(interval)
	go func() { result <- writebackLoop(path, writebackBytes, t.C, done, startWriteback) }()
	return func() error {
		close(done)
		t.Stop()
		return <-result
	}
}

// startWriteback queues n bytes of f from off for writing. Advisory: what
// it does not start, the final fsync writes.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// writebackLoop calls start for what path grew by since the last call, on
// each tick on which that is at least minBytes, until done is closed.
func writebackLoop(path string, minBytes int64, tick <-chan time.Time, done <-chan struct{}, start func(f *os.File, off, n int64)) error {
	var f *os.File
	var started int64
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		select {
		case <-done:
			return nil
		case <-tick:
		}
		if f == nil {
			var err error
			if f, err = os.Open(path); err != nil {
				f = nil // not created yet: the final fsync covers what is missed
				continue
			}
		}
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat %s during the conversion: %w", path, err)
		}
		if fi.Size()-started < minBytes {
			continue
		}
		start(f, started, fi.Size()-started)
		started = fi.Size()
	}
}
