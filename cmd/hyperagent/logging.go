package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// logLevel is the level HYPERAGENT_LOG names, or hclog.NoLevel when it
// is unset (each logger then has its default). A value that names no
// level is an error: a typo must not silently hide the logs asked for.
func logLevel(e *env) (hclog.Level, error) {
	s := e.getenv("HYPERAGENT_LOG")
	if s == "" {
		return hclog.NoLevel, nil
	}
	if l := hclog.LevelFromString(s); l != hclog.NoLevel {
		return l, nil
	}
	return hclog.NoLevel, fmt.Errorf("HYPERAGENT_LOG=%q is not a log level: use one of %s", s, strings.Join(logLevels, ", "))
}

// logLevels are the values HYPERAGENT_LOG takes.
var logLevels = []string{"trace", "debug", "info", "warn", "error", "off"}

// newLogger logs to stderr at level (warn when hclog.NoLevel), as JSON
// when HYPERAGENT_LOG_JSON is set.
func newLogger(e *env, level hclog.Level) hclog.Logger {
	if level == hclog.NoLevel {
		level = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "hyperagent",
		Level:      level,
		Output:     e.stderr,
		JSONFormat: e.getenv("HYPERAGENT_LOG_JSON") != "",
		Color:      hclog.ColorOff,
	})
}

// serviceLogger is the logger of the long-running commands (agent):
// info by default, JSON when stderr is not a terminal or
// HYPERAGENT_LOG_JSON is set, and, under journald, each record prefixed
// with its syslog priority so that `journalctl -p warning` works.
func serviceLogger(e *env, stderrTTY bool) hclog.Logger {
	level, _ := logLevel(e) // run refused a bad one
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	var out io.Writer = e.stderr
	if underJournald(e.getenv("JOURNAL_STREAM")) {
		out = journalWriter{w: e.stderr}
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "hyperagent",
		Level:      level,
		Output:     out,
		JSONFormat: !stderrTTY || e.getenv("HYPERAGENT_LOG_JSON") != "",
		// journald stamps every record itself.
		DisableTime: underJournald(e.getenv("JOURNAL_STREAM")),
		Color:       hclog.ColorOff,
	})
}

// underJournald says stderr is the journal stream systemd named in
// JOURNAL_STREAM ("device:inode"), not a redirection inherited from it.
func underJournald(stream string) bool {
	if stream == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(os.Stderr.Fd()), &st); err != nil {
		return false
	}
	return stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// journalWriter prefixes each record with "<N>", the sd-daemon priority
// journald strips and files the record under.
type journalWriter struct{ w io.Writer }

var _ hclog.LevelWriter = journalWriter{}

func (j journalWriter) Write(p []byte) (int, error) { return j.LevelWrite(hclog.Info, p) }

func (j journalWriter) LevelWrite(level hclog.Level, p []byte) (int, error) {
	prio := 6 // info
	switch {
	case level >= hclog.Error:
		prio = 3
	case level == hclog.Warn:
		prio = 4
	case level <= hclog.Debug:
		prio = 7
	}
	if _, err := io.WriteString(j.w, fmt.Sprintf("<%d>", prio)+string(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
