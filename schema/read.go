package schema

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// maxFileSize bounds every file the loader reads: configuration files,
// -var-file files, and what file() and templatefile() read. Config inputs
// are small; the bound keeps a huge or endless file from filling memory.
const maxFileSize = 16 << 20

// ReadFile reads a configuration file as the loader does (regular files
// only, at most 16 MiB, a clear reason otherwise), for commands that read
// configuration files themselves (fmt).
func ReadFile(path string) ([]byte, error) { return readRegular(path) }

// readRegular reads the regular file at path, which is named in errors as
// given. Anything else is refused with the reason: a device such as
// /dev/zero never ends, a FIFO blocks until some other process writes. The
// file is opened without blocking (opening a FIFO for reading otherwise
// waits for a writer) and checked once open, so what is read is what was
// checked.
func readRegular(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, not a regular file", path, fileKind(fi.Mode()))
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d MiB (%d bytes)", path, maxFileSize>>20, fi.Size())
	}
	// A file that grows while it is read is still cut at the limit.
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxFileSize>>20)
	}
	return b, nil
}

// openError says why path could not be opened, naming it as given (the
// *fs.PathError would name it as opened).
func openError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("%s is a symbolic link that loops, or leads through too many links: %w", path, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// fileKind names the kind of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}
