package reconcile

import (
	"strings"
	"testing"
)

// TestDecodePlanVersions: only this build's format is read; an older or
// newer one, or something else, is refused with what to do.
func TestDecodePlanVersions(t *testing.T) {
	tests := map[string]struct {
		file string
		want string // "" means it decodes
	}{
		"this version": {file: `{"format_version": 3, "variables": {"a": {"value": "x", "type": "string"}}, "sensitive_variables": ["pw"]}`},
		"older":        {file: `{"format_version": 2}`, want: "the saved plan has format_version 2, from an older hyperagent; this one reads version 3 only (it carries the variable values the plan was made with): make the plan again with `hyperagent plan -out=FILE`"},
		"newer":        {file: `{"format_version": 4}`, want: "the saved plan has format_version 4, from a newer hyperagent; this one reads version 3 only: apply it with the hyperagent that made it, or make the plan again with this one"},
		"no version":   {file: `{"serial": 3}`, want: "not a saved plan: no format_version"},
		"not JSON":     {file: `plan`, want: "not a saved plan: "},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := DecodePlan([]byte(tt.file))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("DecodePlan: %v", err)
			case tt.want == "":
				if string(p.Variables["a"]) != `{"value": "x", "type": "string"}` || len(p.SensitiveVariables) != 1 {
					t.Errorf("variables %s, sensitive %v", p.Variables["a"], p.SensitiveVariables)
				}
			case err == nil || !strings.HasPrefix(err.Error(), tt.want):
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
