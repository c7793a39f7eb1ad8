package files

import (
	"context"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
)

func TestFactory(t *testing.T) {
	dir := t.TempDir()
	cfg := cty.ObjectVal(map[string]cty.Value{
		"dir":                  cty.StringVal(dir),
		"max_parallel_exports": cty.NumberIntVal(3),
		"hash_cache":           cty.NullVal(cty.String),
	})
	if len(BlockSchema.Attributes) != 3 {
		t.Fatalf("schema has %d attributes; update this test", len(BlockSchema.Attributes))
	}
	v, err := Factory().New(context.Background(), plugins.NewRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := v.(*Source)
	if !ok {
		t.Fatalf("New returned %T", v)
	}
	if s.Limits().MaxParallel != 3 || s.dir != dir || s.cfg.HashCache != "" {
		t.Errorf("source = %+v", s.cfg)
	}
}
