package schema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A value of megabytes in a message is cut, with its length shown.
func TestLongValuesInMessagesAreClipped(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	dir := writeRepo(t, map[string]string{
		"main.hcl": basePlugins + `
variable "env" {
  default = "dev"
  validation {
    condition     = var.env == "prod"
    error_message = file("message.txt")
  }
}
migration "m" {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/m"
  export { dir = "/exp" }
  domain { memory = file("message.txt") }
}
locals {
  n = tonumber(file("message.txt"))
}
`,
		"message.txt": big,
	})
	_, diags := loadWithin(t, LoadOptions{Dir: dir})
	if len(diags) != 3 {
		t.Fatalf("want 3 diagnostics, got %d:\n%.3000s", len(diags), diagText(diags))
	}
	for _, d := range diags {
		if len(d.Detail) > maxDetail+100 {
			t.Errorf("%s: detail of %d bytes", d.Summary, len(d.Detail))
		}
		if !strings.Contains(d.Detail, "(10485760 bytes in all)") && !strings.Contains(d.Detail, "bytes left out") {
			t.Errorf("%s: the detail does not say what was cut:\n%.1000s", d.Summary, d.Detail)
		}
	}
	if !strings.Contains(diags[0].Detail, "This was checked by the validation rule at") {
		t.Errorf("the validation message lost its end:\n%.1000s", diags[0].Detail)
	}
}

// What file() reads from outside the configuration directory, directly or
// through a symbolic link, is sensitive: no message shows it, and it cannot
// go where values are shown. Files inside the directory are plain.
func TestFileOutsideTheRepoIsSensitive(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(outside, []byte("root:$6$SECRETHASH:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		expr    string // ABS and REL stand for the outside file's paths
		summary string
	}{
		"tonumber of an absolute path": {expr: `tonumber(file("ABS"))`, summary: "Invalid function argument"},
		"through a symbolic link":      {expr: `tonumber(file("link"))`, summary: "Invalid function argument"},
		"relative, escaping the repo":  {expr: `tonumber(file("REL"))`, summary: "Invalid function argument"},
		"templatefile":                 {expr: `tonumber(templatefile("ABS", {}))`, summary: "Invalid function argument"},
		"in a migration setting":       {expr: `file("ABS")`, summary: "Sensitive value not allowed here"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			rel, err := filepath.Rel(dir, outside)
			if err != nil {
				t.Fatal(err)
			}
			expr := strings.NewReplacer("ABS", outside, "REL", rel).Replace(tt.expr)
			if err := writeFile(dir, "main.hcl", basePlugins+`
locals {
  v = `+expr+`
}
migration "m" {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = local.v
  export { dir = "/exp" }
}
`); err != nil {
				t.Fatal(err)
			}
			symlink(t, outside, filepath.Join(dir, "link"))
			_, diags := loadWithin(t, LoadOptions{Dir: dir})
			text := diagText(diags)
			if len(diags) == 0 || diags[0].Summary != tt.summary {
				t.Fatalf("want %s, got:\n%s", tt.summary, text)
			}
			if strings.Contains(text, "SECRETHASH") {
				t.Errorf("a diagnostic shows the file:\n%s", text)
			}
		})
	}

	// Inside the repo, the same mistake shows the value: it is the user's.
	dir := writeRepo(t, map[string]string{
		"main.hcl": "locals {\n  n = tonumber(file(\"n.txt\"))\n}\n",
		"n.txt":    "forty-two",
	})
	_, diags := loadWithin(t, LoadOptions{Dir: dir})
	if !strings.Contains(diagText(diags), `cannot convert "forty-two" to number`) {
		t.Errorf("diagnostics:\n%s", diagText(diags))
	}
}
