package addrs

import (
	"fmt"
	"strconv"
	"strings"
)

// Migration addresses one migration instance, or, with NoKey, a migration
// block that has no for_each. A block with for_each has one instance per key.
type Migration struct {
	Name   string
	Key    string
	HasKey bool
}

// String renders the address as users write it: migration.web["web-01"].
func (m Migration) String() string {
	if !m.HasKey {
		return "migration." + m.Name
	}
	return "migration." + m.Name + "[" + strconv.Quote(m.Key) + "]"
}

// Block is the address of the block that declared this instance.
func (m Migration) Block() Migration { return Migration{Name: m.Name} }

// Contains reports whether o is m itself or, when m names a whole block
// (no key), one of its instances. It is how -target, -exclude and
// depends_on match instances.
func (m Migration) Contains(o Migration) bool {
	if m.Name != o.Name {
		return false
	}
	if !m.HasKey {
		return true
	}
	return o.HasKey && o.Key == m.Key
}

// Less orders addresses by name, then key; used to keep output stable.
func (m Migration) Less(o Migration) bool {
	if m.Name != o.Name {
		return m.Name < o.Name
	}
	if m.HasKey != o.HasKey {
		return !m.HasKey
	}
	return m.Key < o.Key
}

// ParseMigration parses `migration.NAME` or `migration.NAME["KEY"]`.
func ParseMigration(s string) (Migration, error) {
	rest, ok := strings.CutPrefix(s, "migration.")
	if !ok {
		return Migration{}, fmt.Errorf("invalid migration address %q: must start with \"migration.\"", s)
	}
	name, key, hasKey := strings.Cut(rest, "[")
	if !ValidName(name) {
		return Migration{}, fmt.Errorf("invalid migration address %q: bad name %q", s, name)
	}
	if !hasKey {
		return Migration{Name: name}, nil
	}
	key, ok = strings.CutSuffix(key, "]")
	if !ok {
		return Migration{}, fmt.Errorf("invalid migration address %q: missing \"]\"", s)
	}
	// Only double quotes: strconv.Unquote would also take 'a' and `a`,
	// which HCL does not write.
	k, err := strconv.Unquote(key)
	if err != nil || !strings.HasPrefix(key, `"`) {
		return Migration{}, fmt.Errorf("invalid migration address %q: the key must be a quoted string", s)
	}
	return Migration{Name: name, Key: k, HasKey: true}, nil
}

// Kind is the kind of a plugin block.
type Kind string

const (
	KindSource    Kind = "source"
	KindConverter Kind = "converter"
	KindTarget    Kind = "target"
)

// Plugin addresses a declared plugin block: source.vsphere.dc1.
type Plugin struct {
	Kind Kind
	Type string
	Name string
}

func (p Plugin) String() string { return string(p.Kind) + "." + p.Type + "." + p.Name }

// ParsePlugin parses KIND.TYPE.NAME.
func ParsePlugin(s string) (Plugin, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Plugin{}, fmt.Errorf("invalid plugin address %q: want KIND.TYPE.NAME", s)
	}
	k := Kind(parts[0])
	switch k {
	case KindSource, KindConverter, KindTarget:
	default:
		return Plugin{}, fmt.Errorf("invalid plugin address %q: unknown kind %q", s, parts[0])
	}
	if !ValidName(parts[1]) || !ValidName(parts[2]) {
		return Plugin{}, fmt.Errorf("invalid plugin address %q", s)
	}
	return Plugin{Kind: k, Type: parts[1], Name: parts[2]}, nil
}

// ValidName accepts the names users give to variables, locals, plugin
// blocks and migrations: an ASCII letter or underscore, then letters,
// digits, underscores and dashes. Keeping names ASCII also keeps cty from
// seeing two names that normalize to the same string.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case i > 0 && (r == '-' || (r >= '0' && r <= '9')):
		default:
			return false
		}
	}
	return true
}
