package files

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// unitBytes parses a CIM programmatic unit (DSP0004): "byte", "byte * 2^20",
// and the names tools write instead ("MegaBytes", "MB"). OVF tools mean
// binary multiples by these names; empty means bytes.
func unitBytes(units string) (int64, error) {
	u := strings.ToLower(strings.ReplaceAll(units, " ", ""))
	switch u {
	case "", "byte", "bytes", "b":
		return 1, nil
	case "kilobytes", "kb", "kib":
		return 1 << 10, nil
	case "megabytes", "mb", "mib":
		return 1 << 20, nil
	case "gigabytes", "gb", "gib":
		return 1 << 30, nil
	case "terabytes", "tb", "tib":
		return 1 << 40, nil
	}
	if rest, ok := strings.CutPrefix(u, "byte*"); ok {
		base, exp, ok := strings.Cut(rest, "^")
		b, err1 := strconv.Atoi(base)
		e, err2 := strconv.Atoi(exp)
		if ok && err1 == nil && err2 == nil && b > 1 && e >= 0 {
			v := math.Pow(float64(b), float64(e))
			if v <= math.MaxInt64/2 {
				return int64(v), nil
			}
		}
	}
	return 0, fmt.Errorf("unknown allocation units %q", units)
}

// toBytes parses a quantity in units.
func toBytes(quantity, units string) (int64, error) {
	q := strings.TrimSpace(quantity)
	if q == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad quantity %q", quantity)
	}
	mult, err := unitBytes(units)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("quantity %s %s overflows", quantity, units)
	}
	return n * mult, nil
}

// toMiB parses a memory quantity in units into MiB. OVF's default unit for
// memory is bytes, as for everything else.
func toMiB(quantity, units string) (int64, error) {
	b, err := toBytes(quantity, units)
	if err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	return b >> 20, nil
}
