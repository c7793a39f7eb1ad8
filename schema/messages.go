package schema

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// maxShown bounds how much of a value a message quotes: an error_message
// or a setting of megabytes would bury everything else printed.
const maxShown = 512

// maxDetail bounds a diagnostic's detail, whatever put a long value in it
// (a function's error quoting its argument, for one).
const maxDetail = 4096

// clip returns s, or its first maxShown bytes followed by its length.
func clip(s string) string {
	if len(s) <= maxShown {
		return s
	}
	return fmt.Sprintf("%s… (%d bytes in all)", s[:cutAt(s, maxShown)], len(s))
}

// quote is %q of s, clipped as clip does.
func quote(s string) string {
	if len(s) <= maxShown {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s… (%d bytes in all)", strconv.Quote(s[:cutAt(s, maxShown)]), len(s))
}

// cutAt returns the largest index ≤ n that starts a character of s.
func cutAt(s string, n int) int {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// clipDetails shortens every detail longer than maxDetail, keeping its
// beginning and its end (which often says where a rule was written).
func clipDetails(diags hcl.Diagnostics) {
	const tail = 512
	for _, d := range diags {
		if len(d.Detail) <= maxDetail {
			continue
		}
		head := cutAt(d.Detail, maxDetail-tail)
		rest := cutAt(d.Detail, len(d.Detail)-tail)
		d.Detail = fmt.Sprintf("%s… (%d bytes left out) …%s", d.Detail[:head], rest-head, d.Detail[rest:])
	}
}

// valueContext returns expr and ctx for a diagnostic, so that the values
// the expression refers to are printed with it (for_each instances share
// an expression), or nils when one of them is a string too long to print
// in full: HCL prints string values whole.
func valueContext(expr hcl.Expression, ctx *hcl.EvalContext) (hcl.Expression, *hcl.EvalContext) {
	for _, tr := range expr.Variables() {
		v, diags := tr.TraverseAbs(ctx)
		if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.IsMarked() {
			continue
		}
		if v.Type() == cty.String && len(v.AsString()) > maxShown {
			return nil, nil
		}
	}
	return expr, ctx
}
