package protocol

import (
	"testing"
)

// FuzzParseManifest: no input panics the parser or the validator, and a
// manifest that validates survives a marshal/parse round trip still valid,
// each disk's checksum (or its absence) unchanged. The corpus under
// testdata/fuzz holds manifests without checksums and with oversize fields.
func FuzzParseManifest(f *testing.F) {
	b, _ := validManifest().Marshal()
	f.Add(b, true)
	noSum := validManifest()
	noSum.Disks[0].Checksum = ""
	b, _ = noSum.Marshal()
	f.Add(b, true)
	f.Add([]byte("manifest_version: \"1.0\"\ndisks: [{id: a}]\n"), false)
	f.Add([]byte(`{"disks":[{"boot_order_hint":-1}]}`), true)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		ext := ".yaml"
		if asJSON {
			ext = ".json"
		}
		m, err := ParseManifest(data, ext)
		if err != nil {
			return
		}
		if m.Validate() != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("marshal a valid manifest: %v", err)
		}
		m2, err := ParseManifest(out, ".json")
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if err := m2.Validate(); err != nil {
			t.Fatalf("valid manifest invalid after round trip: %v\n%s", err, out)
		}
		for i := range m.Disks {
			if m.Disks[i].Checksum != m2.Disks[i].Checksum {
				t.Fatalf("disk %d checksum %q became %q in the round trip", i, m.Disks[i].Checksum, m2.Disks[i].Checksum)
			}
		}
	})
}

// FuzzParseReport: no input panics the report or error-sidecar parsers; an
// outcome is either a success or carries an error.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"version":"1.0","pipeline":{"success":true},"artifacts":[]}`))
	f.Add([]byte(`{"job_id":"j","status":"success","duration_s":3}`))
	f.Add([]byte(`{"manifest":"j.json","status":"completed"}`))
	f.Add([]byte(`{"job_id":"j","status":"failed","error":"x"}`))
	f.Add([]byte(`{"version":"1.0","pipeline":{"success":false}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseReport(data)
		if err == nil && !o.Success && o.Error == "" {
			t.Fatalf("a failed outcome without an error: %+v", o)
		}
		ParseErrorSidecar(data)
	})
}
