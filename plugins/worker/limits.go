package worker

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// Defaults of the limits every job is held to. Each is a worker flag, and a
// job that breaks one fails for good with an error naming the limit, its
// flag and its value (limitError): it is not handed back, so it does not
// come back after a restart.
const (
	// DefaultSettle: a writer that writes a job file in place is done
	// within seconds.
	DefaultSettle = 5 * time.Second
	// DefaultMaxManifestBytes: a manifest hyperagent writes is a few KiB;
	// one with hundreds of disks and NICs stays far below this.
	DefaultMaxManifestBytes = 4 << 20
	// DefaultJobTimeout: a job converting several TiB at the speed of a
	// slow datastore export fits in a day.
	DefaultJobTimeout = 24 * time.Hour
	// DefaultMaxVirtualSize: vSphere's largest virtual disk is 62 TB.
	DefaultMaxVirtualSize = 64 << 40
)

// limitError says a job broke one of the worker's limits.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

func manifestTooLarge(size, limit int64) error {
	return &limitError{fmt.Sprintf("job file is %d bytes, over the limit of %d bytes (-max-manifest-bytes)", size, limit)}
}

func jobTooLong(limit time.Duration) error {
	return &limitError{fmt.Sprintf("job ran longer than the limit of %v (-job-timeout): stopped, its qemu-img killed", limit)}
}

func diskTooLarge(size, limit int64) error {
	return &limitError{fmt.Sprintf("virtual size %s (%d bytes) is over the limit of %s (-max-virtual-size)",
		fsutil.FormatBytes(size), size, fsutil.FormatBytes(limit))}
}

// readJobFile reads the job file at path, at most limit bytes of it,
// without following a symlink and without blocking on a FIFO: whatever
// sits in the queue is looked at with lstat first (to say what it is),
// then read with fsutil.ReadRegular (O_NOFOLLOW, O_NONBLOCK, only if the
// open file is regular, in case it was swapped since).
func readJobFile(path string, limit int64) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("read job file: %w", err)
	}
	if err := regularJobFile(fi); err != nil {
		return nil, err
	}
	data, err := fsutil.ReadRegular(path, limit)
	var big *fsutil.TooLargeError
	switch {
	case errors.As(err, &big) && big.Grew:
		return nil, &limitError{fmt.Sprintf("job file grew past the limit of %d bytes (-max-manifest-bytes) while it was read", limit)}
	case errors.As(err, &big):
		return nil, manifestTooLarge(big.Size, limit)
	case err != nil:
		return nil, fmt.Errorf("read job file: %w", err)
	}
	return data, nil
}

// regularJobFile refuses a job file that is not a regular file.
func regularJobFile(fi os.FileInfo) error {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return nil
	case t&os.ModeSymlink != 0:
		return errors.New("job file is a symbolic link: refused, never followed (queue the file itself)")
	case t&os.ModeDir != 0:
		return errors.New("job file is a directory, not a regular file")
	case t&os.ModeNamedPipe != 0:
		return errors.New("job file is a FIFO, not a regular file: never opened")
	default:
		return fmt.Errorf("job file is not a regular file (%v)", t)
	}
}
