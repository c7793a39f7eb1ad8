package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/docs"
	"github.com/hypersdk/hyperagent/reconcile"
)

// checkSchema fails the test unless doc is valid against the schema ref
// of docs/schema.
func checkSchema(t *testing.T, ref, doc string) {
	t.Helper()
	if err := docs.Validate(ref, []byte(doc)); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
}

// uiLine as a test reads it back.
type readLine struct {
	Level, Message, Module, Timestamp, Type string
	Changes                                 map[string]any
	Hook                                    map[string]any
	Diagnostic                              *jsonDiagnostic
	Result                                  *reconcile.Result
}

type readLines []readLine

func (ls readLines) count(typ string) int {
	n := 0
	for _, l := range ls {
		if l.Type == typ {
			n++
		}
	}
	return n
}

// uiLines checks that stdout is the machine-readable UI: JSON lines, each
// valid against docs/schema/ui.json, the first a version line; and reads
// them back.
func uiLines(t *testing.T, stdout string) readLines {
	t.Helper()
	n, err := docs.ValidateLines("ui.json", []byte(stdout))
	if err != nil || n == 0 {
		t.Fatalf("%d lines: %v\n%s", n, err, stdout)
	}
	var out readLines
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatal(err)
		}
		var rl readLine
		for k, dst := range map[string]any{"@level": &rl.Level, "@message": &rl.Message, "@module": &rl.Module,
			"@timestamp": &rl.Timestamp, "type": &rl.Type, "changes": &rl.Changes, "hook": &rl.Hook,
			"diagnostic": &rl.Diagnostic, "result": &rl.Result} {
			if v, ok := raw[k]; ok {
				if err := json.Unmarshal(v, dst); err != nil {
					t.Fatalf("%s in %s: %v", k, l, err)
				}
			}
		}
		out = append(out, rl)
	}
	if out[0].Type != "version" {
		t.Errorf("the first line is %s, not version", out[0].Type)
	}
	return out
}

// The schemas of the CLI's documents declare exactly the fields of the
// Go types they are marshalled from.
func TestCLISchemasDeclareEveryField(t *testing.T) {
	for _, tc := range []struct {
		v             any
		file, pointer string
	}{
		{validateJSON{}, "validate.json", "/properties"},
		{versionJSON{}, "version.json", "/properties"},
		{statusReport{}, "status.json", "/properties"},
		{recordedMigration{}, "status.json", "/properties/recorded/items/properties"},
		{jsonDiagnostic{}, "common.json", "/$defs/diagnostic/properties"},
		{jsonRange{}, "common.json", "/$defs/range/properties"},
		{jsonPos{}, "common.json", "/$defs/pos/properties"},
		{jsonSnippet{}, "common.json", "/$defs/snippet/properties"},
		{planCounts{}, "ui.json", "/$defs/plan_counts/properties"},
		{applyCounts{}, "ui.json", "/$defs/apply_counts/properties"},
	} {
		if err := docs.FieldsMatch(reflect.TypeOf(tc.v), tc.file, tc.pointer); err != nil {
			t.Error(err)
		}
	}
}
