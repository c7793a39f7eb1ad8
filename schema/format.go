package schema

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in the canonical style (hclwrite.Format: spacing,
// alignment and indentation; comments kept). It checks the syntax first:
// formatting a file that does not parse would garble it, so a file with
// syntax errors comes back with the diagnostics and a nil result.
//
// Source that nests deeper than maxNesting is refused like a syntax error:
// parsing it could overflow the stack.
func Format(filename string, src []byte) ([]byte, hcl.Diagnostics) {
	if d := checkFileNesting(src, filename, false); d != nil {
		return nil, hcl.Diagnostics{d}
	}
	_, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	return hclwrite.Format(src), diags
}
