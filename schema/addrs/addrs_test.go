package addrs

import (
	"strings"
	"testing"
)

func TestParseMigrationRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Migration
	}{
		{`migration.db`, Migration{Name: "db"}},
		{`migration.web["web-01"]`, Migration{Name: "web", Key: "web-01", HasKey: true}},
		{`migration.web[""]`, Migration{Name: "web", HasKey: true}},
		{`migration.w_2["a \"quoted\" key"]`, Migration{Name: "w_2", Key: `a "quoted" key`, HasKey: true}},
		{`migration.web["ünï/côdé"]`, Migration{Name: "web", Key: "ünï/côdé", HasKey: true}},
	} {
		got, err := ParseMigration(tc.in)
		if err != nil {
			t.Fatalf("ParseMigration(%s): %v", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("ParseMigration(%s) = %#v, want %#v", tc.in, got, tc.want)
		}
		again, err := ParseMigration(got.String())
		if err != nil || again != got {
			t.Errorf("%s: String() = %s does not parse back (%v, %v)", tc.in, got.String(), again, err)
		}
	}
}

func TestParseMigrationErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`source.vsphere.dc1`, `must start with "migration."`},
		{`migration.`, `bad name ""`},
		{`migration.1web`, `bad name "1web"`},
		{`migration.web["a"`, `missing "]"`},
		{`migration.web[a]`, `the key must be a quoted string`},
		{`migration.web['a']`, `the key must be a quoted string`},
		{"migration.web[`a`]", `the key must be a quoted string`},
	} {
		_, err := ParseMigration(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMigration(%s) error = %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestContainsAndLess(t *testing.T) {
	block := Migration{Name: "web"}
	a := Migration{Name: "web", Key: "a", HasKey: true}
	b := Migration{Name: "web", Key: "b", HasKey: true}
	other := Migration{Name: "db"}
	if !block.Contains(a) || !block.Contains(block) || !a.Contains(a) {
		t.Error("a block contains itself and its instances; an instance contains itself")
	}
	if a.Contains(b) || a.Contains(block) || block.Contains(other) {
		t.Error("an instance contains no other address; a block no other block")
	}
	if !other.Less(block) || !block.Less(a) || !a.Less(b) || b.Less(a) || a.Less(a) {
		t.Error("Less orders by name, then the block before its instances, then by key")
	}
	if a.Block() != block {
		t.Errorf("Block() = %v", a.Block())
	}
}

func TestParsePlugin(t *testing.T) {
	p, err := ParsePlugin("converter.hyper2kvm.main")
	if err != nil || p != (Plugin{Kind: KindConverter, Type: "hyper2kvm", Name: "main"}) || p.String() != "converter.hyper2kvm.main" {
		t.Fatalf("ParsePlugin = %#v, %v", p, err)
	}
	for _, bad := range []string{"source.vsphere", "module.x.y", "source.vsphere.1dc", "source..dc1", "target.libvirt.kvm.extra"} {
		if _, err := ParsePlugin(bad); err == nil {
			t.Errorf("ParsePlugin(%s) accepted", bad)
		}
	}
}
