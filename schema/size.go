package schema

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// memoryUnits maps a unit suffix to its size in bytes. The single letters
// are binary, as qemu and libvirt read them ("2G" is 2 GiB); KB, MB, GB and
// TB are decimal.
var memoryUnits = map[string]float64{
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
}

// ParseMemory reads a memory size such as "4GiB", "512MiB", "2G" or
// "1.5GiB" and returns it in MiB. The size must be a positive whole number
// of MiB: a domain cannot have part of a MiB.
func ParseMemory(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("%s is not a memory size: write a number and a unit, like \"4GiB\" or \"512MiB\"", quote(s))
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	mult, ok := memoryUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%s has an unknown unit %s: use KiB, MiB, GiB or TiB (or K, M, G, T)", quote(s), quote(unit))
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not a memory size: %s is not a number", quote(s), quote(num))
	}
	mib := n * mult / (1 << 20)
	if mib < 1 || mib > 1<<40 || mib != math.Trunc(mib) {
		hint := ""
		if strings.HasSuffix(unit, "B") && !strings.HasSuffix(unit, "iB") {
			hint = fmt.Sprintf(" (%s is a decimal unit; did you mean %siB?)", unit, unit[:1])
		}
		return 0, fmt.Errorf("%s is not a positive whole number of MiB%s", quote(s), hint)
	}
	return int64(mib), nil
}
