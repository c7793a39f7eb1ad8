package plugins

import (
	"errors"
	"fmt"

	"github.com/hypersdk/hyperagent/schema/addrs"
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

// ConfigError is a failure caused by the value of one attribute of the
// plugin's own block: a URI no daemon serves, a directory that does not
// exist. The CLI and the agent show it at that attribute's file:line.
type ConfigError struct {
	Attr string // the attribute's name in the block, e.g. "uri"
	Err  error
}

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// AttrError marks err as caused by the value of attribute attr.
// AttrError(attr, nil) is nil.
func AttrError(attr string, err error) error {
	if err == nil {
		return nil
	}
	return &ConfigError{Attr: attr, Err: err}
}

// PluginError is a failure of one plugin instance: it could not be made
// from its block, or a call to it failed. Addr names the block, Err
// (possibly a *ConfigError) says why.
type PluginError struct {
	Addr addrs.Plugin
	Err  error
	// Starting says the instance could not be made at all.
	Starting bool
}

func (e *PluginError) Error() string { return e.Addr.String() + ": " + e.Err.Error() }
func (e *PluginError) Unwrap() error { return e.Err }
