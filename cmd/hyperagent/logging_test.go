package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestJournalPriorities: under journald each record starts with its
// syslog priority, which journald strips and files the record under.
func TestJournalPriorities(t *testing.T) {
	var b bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: journalWriter{w: &b}, Level: hclog.Trace, JSONFormat: true})
	log.Error("e")
	log.Warn("w")
	log.Info("i")
	log.Debug("d")
	var prios []string
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		prios = append(prios, l[:3])
	}
	if got := strings.Join(prios, " "); got != "<3> <4> <6> <7>" {
		t.Errorf("priorities %q, want <3> <4> <6> <7>\n%s", got, b.String())
	}
	if underJournald("") || underJournald("1:2") {
		t.Error("stderr taken for the journal without JOURNAL_STREAM naming it")
	}
}
