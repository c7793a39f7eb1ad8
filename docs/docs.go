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
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strconv"
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

// FieldsMatch checks that the properties a schema declares at pointer
// (a JSON pointer into file, e.g. "/$defs/migration/properties") are
// exactly the JSON names of t's exported fields: a field added to a Go
// type and not to its schema, or the reverse, is an error naming it.
func FieldsMatch(t reflect.Type, file, pointer string) error {
	b, err := files.ReadFile(path.Join("schema", file))
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		switch v := doc.(type) {
		case map[string]any:
			var ok bool
			if doc, ok = v[tok]; !ok {
				return fmt.Errorf("%s%s: no %q", file, pointer, tok)
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return fmt.Errorf("%s%s: no item %q", file, pointer, tok)
			}
			doc = v[i]
		default:
			return fmt.Errorf("%s%s: %q is not in an object or array", file, pointer, tok)
		}
	}
	props, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("%s%s is not an object of properties", file, pointer)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := map[string]bool{}
	jsonNames(t, fields)
	var errs []string
	for n := range fields {
		if _, ok := props[n]; !ok {
			errs = append(errs, fmt.Sprintf("%s.%s is not in %s%s", t.Name(), n, file, pointer))
		}
	}
	for n := range props {
		if !fields[n] {
			errs = append(errs, fmt.Sprintf("%s%s declares %s, which %s has not", file, pointer, n, t.Name()))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// jsonNames adds the JSON names of t's exported fields to into, those of
// an embedded struct without a name of its own included, as
// encoding/json marshals them.
func jsonNames(t reflect.Type, into map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-", !f.IsExported() && !f.Anonymous:
			continue
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			jsonNames(f.Type, into)
			continue
		case name == "":
			name = f.Name
		}
		into[name] = true
	}
}
