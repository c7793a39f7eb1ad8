package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every schema compiles, as draft 2020-12 with all its references
// resolved inside docs/schema.
func TestSchemasCompile(t *testing.T) {
	names := Names()
	if len(names) < 10 {
		t.Fatalf("only %d schemas: %v", len(names), names)
	}
	for _, n := range names {
		if _, err := Schema(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// exampleRe finds the JSON examples of the docs that name their schema:
// an HTML comment "<!-- schema: plan.json -->" on the line before the
// fence.
var exampleRe = regexp.MustCompile("(?s)<!-- schema: ([^ ]+) -->\n```json\n(.*?)\n```")

// The examples in docs/*.md are valid against the schema they name, so
// the documentation cannot drift from the formats.
func TestDocExamples(t *testing.T) {
	mds, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, md := range mds {
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range exampleRe.FindAllStringSubmatch(string(b), -1) {
			n++
			ref, doc := m[1], m[2]
			var err error
			if strings.HasPrefix(ref, "ui.json") {
				_, err = ValidateLines(ref, []byte(doc))
			} else {
				err = Validate(ref, []byte(doc))
			}
			if err != nil {
				t.Errorf("%s: example for %s: %v", md, ref, err)
			}
		}
	}
	if n < 3 {
		t.Errorf("only %d schema-tagged examples in docs/*.md", n)
	}
}

// The schemas refuse what they must: a check that accepts anything is no
// check.
func TestSchemasRefuse(t *testing.T) {
	for _, tc := range []struct{ ref, doc string }{
		{"version.json", `{"format_version": 1, "version": "x", "go": "go1", "platform": "linux_amd64"}`},
		{"version.json", `{"format_version": "1.0", "version": "x", "go": "go1", "platform": "linux_amd64", "extra": 1}`},
		{"validate.json", `{"format_version": "1.0", "valid": true, "error_count": 0, "warning_count": 0, "diagnostics": null}`},
		{"ui.json", `{"@level": "info", "@message": "m", "@module": "hyperagent.ui", "@timestamp": "yesterday", "type": "version", "format_version": "1.0", "hyperagent": "x"}`},
		{"ui.json", `{"@level": "info", "@message": "m", "@module": "hyperagent.ui", "@timestamp": "2026-01-02T03:04:05.123456789Z", "type": "mystery"}`},
		{"manifest.json", `{"manifest_version": "1.0", "vm": {"cpu": 1, "mem_gb": 1, "firmware": "efi", "os_hint": "linux"}, "disks": [{"id": "d", "source_format": "vmdk", "bytes": 1, "local_path": "/a"}], "pipeline": {"convert": {"enabled": true}}, "output": {"directory": "/o", "format": "qcow2"}}`},
		{"manifest.json", `{"manifest_version": "1.0", "vm": {"cpu": 1, "mem_gb": 1, "firmware": "bios", "os_hint": "linux"}, "disks": [{"id": "d", "source_format": "vmdk", "bytes": 1, "local_path": "/a"}], "pipeline": {"convert": {"enabled": true}}, "output": {"directory": "/o/../etc", "format": "qcow2"}}`},
		{"report.json", `{"version": "1.0"}`},
	} {
		if err := Validate(tc.ref, []byte(tc.doc)); err == nil {
			t.Errorf("%s accepts %s", tc.ref, tc.doc)
		}
	}
	if err := Validate("ui.json", []byte(`{"@level": "info", "@message": "m", "@module": "hyperagent.ui", "@timestamp": "2026-01-02T03:04:05.123456789Z", "type": "version", "format_version": "1.0", "hyperagent": "x"}`)); err != nil {
		t.Errorf("a version line: %v", err)
	}
}
