package main

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// serviceLogger is the logger of the long-running commands (agent):
// info by default, JSON when stderr is not a terminal or
// HYPERAGENT_LOG_JSON is set, and, under journald, each record prefixed
// with its syslog priority so that `journalctl -p warning` works.
func serviceLogger(e *env, stderrTTY bool) hclog.Logger {
	level := hclog.Info
	if s := e.getenv("HYPERAGENT_LOG"); s != "" {
		if l := hclog.LevelFromString(s); l != hclog.NoLevel {
			level = l
		}
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
