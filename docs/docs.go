// Package docs holds the JSON Schemas of hyperagent's machine-readable
// formats (docs/schema/*.json, described in docs/output.md) and compiles
// them, so that tests check every document hyperagent emits — and the
// watch-directory protocol's manifests and reports — against the schemas
// published for other programs.
//
// It imports nothing of hyperagent: the schemas describe the formats, the
// code that writes them lives elsewhere.
package docs

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schema/*.json
var files embed.FS

// BaseURL is the prefix of every schema's $id; "$ref": "common.json#…"
// resolves against it.
const BaseURL = "https://github.com/hypersdk/hyperagent/docs/schema/"

var (
	compileOnce sync.Once
	compiler    *jsonschema.Compiler
	compileErr  error

	mu       sync.Mutex
	compiled = map[string]*jsonschema.Schema{}
)

// Names lists the schema files, e.g. "plan.json".
func Names() []string {
	ents, err := fs.ReadDir(files, "schema")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// load adds every schema file to one compiler under its $id, so that
// references between files resolve without any network or disk access.
// Formats (date-time) are asserted, not just annotations.
func load() (*jsonschema.Compiler, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for _, name := range Names() {
		b, err := files.ReadFile(path.Join("schema", name))
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema/%s: %w", name, err)
		}
		if m, ok := doc.(map[string]any); !ok || m["$id"] != BaseURL+name {
			return nil, fmt.Errorf("schema/%s: its $id must be %s", name, BaseURL+name)
		}
		if err := c.AddResource(BaseURL+name, doc); err != nil {
			return nil, fmt.Errorf("schema/%s: %w", name, err)
		}
	}
	return c, nil
}

// Schema compiles a schema: a file name ("plan.json") or a definition
// in one ("api.json#/$defs/status").
func Schema(ref string) (*jsonschema.Schema, error) {
	compileOnce.Do(func() { compiler, compileErr = load() })
	if compileErr != nil {
		return nil, compileErr
	}
	mu.Lock()
	defer mu.Unlock()
	if s, ok := compiled[ref]; ok {
		return s, nil
	}
	s, err := compiler.Compile(BaseURL + ref)
	if err != nil {
		return nil, err
	}
	compiled[ref] = s
	return s, nil
}

// Validate checks one JSON document against the schema ref.
func Validate(ref string, doc []byte) error {
	s, err := Schema(ref)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("against %s: %w", ref, err)
	}
	return nil
}

// ValidateLines checks JSON lines: every non-empty line is one document
// valid against ref. It returns how many lines it checked.
func ValidateLines(ref string, lines []byte) (int, error) {
	n := 0
	for i, l := range strings.Split(string(lines), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n++
		if err := Validate(ref, []byte(l)); err != nil {
			return n, fmt.Errorf("line %d %s: %w", i+1, l, err)
		}
	}
	return n, nil
}
