//go:build !demo

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Without -tags demo the command exists, fails, and says how to run it.
func TestDemoStub(t *testing.T) {
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, registry: builtinRegistry()}
	if code := run(context.Background(), []string{"demo"}, e); code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	want := "run: go run -tags demo ./cmd/hyperagent demo"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not say %q", stderr.String(), want)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout: %q", stdout.String())
	}
}
