// Package examples holds the example migration repos. Only the demo's is
// embedded: `hyperagent dev` writes it into the repo it creates, so dev
// runs the same files the examples test validates.
package examples

import "embed"

// Demo is examples/demo: its *.hcl files under "demo/".
//
//go:embed demo/*.hcl
var Demo embed.FS
