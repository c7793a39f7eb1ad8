package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// JobID derives the converter job id for a migration address and attempt
// (1, 2, …). It matches [A-Za-z0-9_-]+ as PROTOCOL.md requires, is readable,
// and is unique per address and attempt: the readable part is sanitised, so
// a short hash of the exact address keeps two addresses that sanitise alike
// apart.
func JobID(address string, attempt int) string {
	readable := strings.TrimPrefix(address, "migration.")
	var b strings.Builder
	for _, r := range readable {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), "_")
	if len(s) > 48 {
		s = s[:48]
	}
	sum := sha256.Sum256([]byte(address))
	return fmt.Sprintf("%s-%s-a%d", s, hex.EncodeToString(sum[:4]), attempt)
}
