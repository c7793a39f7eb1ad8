package schema

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestParseMemory(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    int64
		wantErr string
	}{
		"GiB":           {in: "4GiB", want: 4096},
		"MiB":           {in: "512MiB", want: 512},
		"single letter": {in: "2G", want: 2048},
		"TiB":           {in: "1TiB", want: 1 << 20},
		"fraction":      {in: "1.5GiB", want: 1536},
		"spaces":        {in: " 8 GiB ", want: 8192},
		"KiB whole MiB": {in: "2048KiB", want: 2},
		"decimal GB":    {in: "4GB", wantErr: "did you mean GiB?"},
		"decimal MB ok": {in: "1048.576MB", want: 1000},
		"no unit":       {in: "4096", wantErr: "write a number and a unit"},
		"no number":     {in: "GiB", wantErr: "write a number and a unit"},
		"unknown unit":  {in: "4Gb", wantErr: `unknown unit "Gb"`},
		"too small":     {in: "512KiB", wantErr: "positive whole number"},
		"zero":          {in: "0GiB", wantErr: "positive whole number"},
		"two dots":      {in: "1.2.3GiB", wantErr: "is not a number"},
		"empty":         {in: "", wantErr: "write a number"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseMemory(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMemory(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMemory(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestConvertStrict(t *testing.T) {
	tests := map[string]struct {
		in      cty.Value
		want    cty.Type
		wantErr string
	}{
		"string":                {in: cty.StringVal("x"), want: cty.String},
		"number for string":     {in: cty.NumberIntVal(42), want: cty.String, wantErr: "string required, but got number"},
		"string for number":     {in: cty.StringVal("42"), want: cty.Number, wantErr: "number required, but got string"},
		"bool for string":       {in: cty.True, want: cty.String, wantErr: "string required, but got bool"},
		"null is fine":          {in: cty.NullVal(cty.Number), want: cty.String},
		"tuple to list":         {in: cty.TupleVal([]cty.Value{cty.StringVal("a")}), want: cty.List(cty.String)},
		"number inside a list":  {in: cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.NumberIntVal(1)}), want: cty.List(cty.String), wantErr: "element [1]"},
		"object to map":         {in: cty.ObjectVal(map[string]cty.Value{"a": cty.StringVal("x")}), want: cty.Map(cty.String)},
		"number inside a map":   {in: cty.ObjectVal(map[string]cty.Value{"a": cty.NumberIntVal(1)}), want: cty.Map(cty.String), wantErr: `element ["a"]`},
		"string for a list":     {in: cty.StringVal("a"), want: cty.List(cty.String), wantErr: "list of string required"},
		"marked values convert": {in: cty.StringVal("s").Mark(sensitiveMark), want: cty.String},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := convertStrict(tt.in, tt.want)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
