package protocol

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/docs"
)

// corpusEntry is one file of a fuzz corpus: its data, and for
// FuzzParseManifest whether it is JSON (else YAML).
type corpusEntry struct {
	data   []byte
	asJSON bool
}

// readCorpus reads testdata/fuzz/<target>, files in "go test fuzz v1"
// form: a []byte(…) line, then for manifests a bool(…) line.
func readCorpus(t *testing.T, target string) map[string]corpusEntry {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil || len(files) < 5 {
		t.Fatalf("corpus of %s: %v (%v)", target, files, err)
	}
	out := map[string]corpusEntry{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		q, ok := strings.CutPrefix(lines[1], "[]byte(")
		if lines[0] != "go test fuzz v1" || !ok {
			t.Fatalf("%s: not a corpus file", f)
		}
		data, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = corpusEntry{data: []byte(data), asJSON: len(lines) < 3 || lines[2] == "bool(true)"}
	}
	return out
}

// The manifest schema (docs/schema/manifest.json) and the code that
// reads manifests (ParseManifest, then Validate) agree on every JSON
// manifest of the fuzz corpus, but for the differences the schema's
// description states.
func TestManifestSchemaAgreesWithValidate(t *testing.T) {
	disagree := map[string]string{}
	for name, e := range readCorpus(t, "FuzzParseManifest") {
		if !e.asJSON {
			continue
		}
		m, err := ParseManifest(e.data, ".json")
		if err == nil {
			err = m.Validate()
		}
		serr := docs.Validate("manifest.json", e.data)
		if (err == nil) != (serr == nil) {
			disagree[name] = "code: " + errText(err) + "; schema: " + errText(serr)
		}
	}
	var names []string
	for n := range disagree {
		names = append(names, n)
	}
	sort.Strings(names)
	// Stricter by design: the hyper2kvm daemon refuses a checksum key
	// that is present and empty, so the schema does; the worker reads it
	// as no checksum.
	want := []string{"empty-checksum-key"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("schema and code disagree (-want +got):\n%s\n%v", diff, disagree)
	}
}

func errText(err error) string {
	if err == nil {
		return "valid"
	}
	return err.Error()
}

// Every rule of Validate, broken one at a time (and a few valid
// variants): the schema says what the code says, but for the two
// differences its description states.
func TestManifestSchemaRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Manifest)
		// differs: the schema's verdict differs from Validate's, on
		// purpose.
		differs bool
	}{
		{"valid", func(*Manifest) {}, false},
		{"no checksum", func(m *Manifest) { m.Disks[0].Checksum = "" }, false},
		{"export timestamp", func(m *Manifest) { m.Source.ExportTimestamp = "2026-03-01T10:05:00Z" }, false},
		{"bad export timestamp", func(m *Manifest) { m.Source.ExportTimestamp = "yesterday" }, false},
		{"version", func(m *Manifest) { m.ManifestVersion = "1.1" }, false},
		{"cpu", func(m *Manifest) { m.VM.CPU = 0 }, false},
		{"memory", func(m *Manifest) { m.VM.MemGB = 0 }, false},
		{"firmware efi", func(m *Manifest) { m.VM.Firmware = "efi" }, false},
		{"os hint", func(m *Manifest) { m.VM.OSHint = "bsd" }, false},
		{"no disks", func(m *Manifest) { m.Disks = nil }, false},
		{"disk id", func(m *Manifest) { m.Disks[0].ID = "a b" }, false},
		{"duplicate disk ids: Validate only", func(m *Manifest) { m.Disks = append(m.Disks, m.Disks[0]) }, true},
		{"source format", func(m *Manifest) { m.Disks[0].SourceFormat = "iso" }, false},
		{"negative bytes", func(m *Manifest) { m.Disks[0].Bytes = -1 }, false},
		{"relative path", func(m *Manifest) { m.Disks[0].LocalPath = "in/a.vmdk" }, false},
		{"md5", func(m *Manifest) { m.Disks[0].Checksum = "md5:00" }, false},
		{"upper-case checksum", func(m *Manifest) { m.Disks[0].Checksum = "sha256:" + strings.Repeat("A", 64) }, false},
		{"boot order", func(m *Manifest) { m.Disks[0].BootOrderHint = -1 }, false},
		{"disk type", func(m *Manifest) { m.Disks[0].DiskType = "swap" }, false},
		{"disk type data", func(m *Manifest) { m.Disks[0].DiskType = "data" }, false},
		{"compress level", func(m *Manifest) { m.Pipeline.Convert.CompressLevel = 10 }, false},
		{"compress level 9", func(m *Manifest) { m.Pipeline.Convert.CompressLevel = 9 }, false},
		{"output dotdot", func(m *Manifest) { m.Output.Directory = "/out/../etc" }, false},
		{"output dot", func(m *Manifest) { m.Output.Directory = "/out/./j" }, false},
		{"output trailing slash", func(m *Manifest) { m.Output.Directory = "/out/j/" }, false},
		{"output double slash", func(m *Manifest) { m.Output.Directory = "/out//j" }, false},
		{"output relative", func(m *Manifest) { m.Output.Directory = "out/j" }, false},
		{"output root", func(m *Manifest) { m.Output.Directory = "/" }, false},
		{"output dotfile", func(m *Manifest) { m.Output.Directory = "/out/.j..k" }, false},
		{"output format", func(m *Manifest) { m.Output.Format = "vmdk" }, false},
		{"report in a folder", func(m *Manifest) { m.Options.Report.Path = "reports/r.json" }, false},
		{"report escapes", func(m *Manifest) { m.Options.Report.Path = "../r.json" }, false},
		{"report absolute", func(m *Manifest) { m.Options.Report.Path = "/r.json" }, false},
		{"report .. inside: Validate only", func(m *Manifest) { m.Options.Report.Path = "a/../r.json" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validManifest()
			tc.edit(m)
			b, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			verr, serr := m.Validate(), docs.Validate("manifest.json", b)
			if same := (verr == nil) == (serr == nil); same == tc.differs {
				t.Errorf("Validate: %s; schema: %s", errText(verr), errText(serr))
			}
		})
	}
}

// The report and error-sidecar schemas and ParseReport agree on the
// report corpus: what the observer understands, the schema describes.
func TestReportSchemaAgreesWithParseReport(t *testing.T) {
	var disagree []string
	for name, e := range readCorpus(t, "FuzzParseReport") {
		_, err := ParseReport(e.data)
		serr := docs.Validate("report.json", e.data)
		if (err == nil) != (serr == nil) {
			disagree = append(disagree, name)
			t.Logf("%s: ParseReport: %s; schema: %s", name, errText(err), errText(serr))
		}
	}
	sort.Strings(disagree)
	// ParseReport refuses a duration beyond float64, which JSON Schema
	// numbers do not bound.
	want := []string{"huge-duration"}
	if diff := cmp.Diff(want, disagree); diff != "" {
		t.Errorf("schema and code disagree (-want +got):\n%s", diff)
	}
}

// The protocol's schemas declare exactly the fields of the Go types both
// sides read and write.
func TestProtocolSchemasDeclareEveryField(t *testing.T) {
	for _, tc := range []struct {
		v             any
		file, pointer string
	}{
		{Manifest{}, "manifest.json", "/properties"},
		{Source{}, "manifest.json", "/properties/source/properties"},
		{VM{}, "manifest.json", "/properties/vm/properties"},
		{Disk{}, "manifest.json", "/properties/disks/items/properties"},
		{NIC{}, "manifest.json", "/properties/nics/items/properties"},
		{Metadata{}, "manifest.json", "/properties/metadata/properties"},
		{Pipeline{}, "manifest.json", "/properties/pipeline/properties"},
		{InspectStage{}, "manifest.json", "/properties/pipeline/properties/inspect/properties"},
		{FixStage{}, "manifest.json", "/properties/pipeline/properties/fix/properties"},
		{ConvertStage{}, "manifest.json", "/properties/pipeline/properties/convert/properties"},
		{ValidateStage{}, "manifest.json", "/properties/pipeline/properties/validate/properties"},
		{Output{}, "manifest.json", "/properties/output/properties"},
		{Options{}, "manifest.json", "/properties/options/properties"},
		{ReportOption{}, "manifest.json", "/properties/options/properties/report/properties"},
		{Report{}, "report.json", "/$defs/full/properties"},
		{InputManifest{}, "report.json", "/$defs/full/properties/input_manifest/properties"},
		{PipelineResult{}, "report.json", "/$defs/full/properties/pipeline/properties"},
		{StageResult{}, "report.json", "/$defs/full/properties/pipeline/properties/stages/additionalProperties/properties"},
		{Artifact{}, "report.json", "/$defs/full/properties/artifacts/items/properties"},
		{Note{}, "report.json", "/$defs/note/properties"},
		{Summary{}, "report.json", "/$defs/full/properties/summary/properties"},
		{ErrorSidecar{}, "error-sidecar.json", "/properties"},
		{Progress{}, "progress.json", "/properties"},
	} {
		if err := docs.FieldsMatch(reflect.TypeOf(tc.v), tc.file, tc.pointer); err != nil {
			t.Error(err)
		}
	}
}
