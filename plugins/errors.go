package plugins

import (
	"errors"
	"fmt"
)

// ErrNotImplemented is wrapped by every error that reports a feature this
// build does not have. It is terminal.
var ErrNotImplemented = errors.New("not implemented")

// NotImplemented returns a terminal error saying what is missing.
func NotImplemented(what string) error {
	return Terminal(fmt.Errorf("%s: %w", what, ErrNotImplemented))
}

// terminalError marks a failure that retrying cannot fix (a wrong password,
// a checksum mismatch, a refused definition).
type terminalError struct{ err error }

func (e *terminalError) Error() string { return e.err.Error() }
func (e *terminalError) Unwrap() error { return e.err }

// Terminal marks err as one that retrying cannot fix. Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err: err}
}

// IsTerminal reports whether err, or an error it wraps, is terminal.
func IsTerminal(err error) bool {
	var t *terminalError
	return errors.As(err, &t)
}
