package libvirt

import (
	"context"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// configValue builds the object the schema layer hands a factory: every
// declared attribute, set, defaulted or null.
func configValue(bs schema.BlockSchema, set map[string]cty.Value) cty.Value {
	attrs := map[string]cty.Value{}
	for _, a := range bs.Attributes {
		switch v, ok := set[a.Name]; {
		case ok:
			attrs[a.Name] = v
		case a.Default != cty.NilVal:
			attrs[a.Name] = a.Default
		default:
			attrs[a.Name] = cty.NullVal(a.Type)
		}
	}
	return cty.ObjectVal(attrs)
}

func TestFactory(t *testing.T) {
	tests := map[string]struct {
		set     map[string]cty.Value
		wantErr bool
	}{
		"storage_dir": {map[string]cty.Value{
			"storage_dir": cty.StringVal("/var/lib/libvirt/images"),
			"network_map": cty.MapVal(map[string]cty.Value{"VM Network": cty.StringVal("default")}),
		}, false},
		"storage_pool": {map[string]cty.Value{"storage_pool": cty.StringVal("default")}, false},
		"neither":      {nil, true},
		"both":         {map[string]cty.Value{"storage_dir": cty.StringVal("/x"), "storage_pool": cty.StringVal("p")}, true},
		"relative dir": {map[string]cty.Value{"storage_dir": cty.StringVal("images")}, true},
		"empty bridge": {map[string]cty.Value{"storage_dir": cty.StringVal("/x"), "network_map": cty.MapVal(map[string]cty.Value{"A": cty.StringVal("bridge:")})}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := Factory().New(context.Background(), plugins.NewRequest{Config: configValue(BlockSchema, tc.set)})
			if tc.wantErr {
				if err == nil || !plugins.IsTerminal(err) {
					t.Errorf("err = %v, want a terminal config error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tg, ok := v.(*Target)
			if !ok {
				t.Fatalf("New returned %T", v)
			}
			if tg.cfg.URI != "qemu:///system" || tg.cfg.Machine != "q35" || tg.cfg.UEFILoader != defaultUEFILoader {
				t.Errorf("defaults not applied: %+v", tg.cfg)
			}
			if tg.conn.l != nil {
				t.Errorf("New connected to libvirt")
			}
		})
	}
}
