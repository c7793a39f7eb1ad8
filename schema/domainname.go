package schema

import (
	"fmt"
	"regexp"
	"unicode/utf8"
)

// MaxDomainNameLen bounds a domain name: it also names the domain's disk
// and NVRAM files ("<name>-<disk>.qcow2", "<name>_VARS.fd"), which must fit
// in a file name (255 bytes) with room for their suffixes.
const MaxDomainNameLen = 200

var domainNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)

// DomainNameProblem says why name cannot be a domain's name, or "" when it
// can. It is the one rule for domain names: validate applies it to names
// the configuration sets, plan to names taken from a VM, and the libvirt
// target before defining. A name is a plain file name (no '/', no leading
// '.' or '-', which tools would read as an option), of letters, digits and
// . _ + -.
func DomainNameProblem(name string) string {
	switch {
	case name == "":
		return "a domain name cannot be empty"
	case len(name) > MaxDomainNameLen:
		return fmt.Sprintf("a domain name is at most %d bytes; this one has %d", MaxDomainNameLen, len(name))
	case !utf8.ValidString(name) || !domainNameRe.MatchString(name):
		return fmt.Sprintf("%q is not a usable domain name: use letters, digits and . _ + - only, starting with a letter, digit or _ (it also names the domain's disk files)", name)
	}
	return ""
}
