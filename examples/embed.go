// Package examples holds the example migration repos. Only the demo's is
// embedded: `hyperagent demo` (built with -tags demo) writes it into the
// repo it creates, so the demo runs the same files the examples test
// validates.
package examples

import "embed"

// Demo is examples/demo: its *.hcl files under "demo/".
//
//go:embed demo/*.hcl
var Demo embed.FS
