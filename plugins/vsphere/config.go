package vsphere

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/vim25/soap"
)

// config is the decoded `source "vsphere"` block.
type config struct {
	URL                string `cty:"url"`
	Username           string `cty:"username"`
	Password           string `cty:"password"`
	Datacenter         string `cty:"datacenter"`
	Thumbprint         string `cty:"thumbprint"`
	CAFile             string `cty:"ca_file"`
	Insecure           bool   `cty:"insecure"`
	MaxParallelExports int    `cty:"max_parallel_exports"`
	MaxParallelDisks   int    `cty:"max_parallel_disks"`
}

// settings are the resolved connection settings. The password lives only
// here and in the session's login call; u never carries user information.
type settings struct {
	u          *url.URL
	username   string
	password   string
	datacenter string
	thumbprint string // normalised: upper-case colon hex
	caFile     string
	insecure   bool
	exports    int
	disks      int
}

// resolve fills unset connection fields from govc's environment (getenv is
// os.Getenv, read when the source is built) and validates the result. Trust settings are one
// group: when the block sets any of thumbprint, ca_file or insecure, the
// environment's are ignored, so a pinned block is never loosened by
// GOVC_INSECURE.
func (c config) resolve(getenv func(string) string) (settings, error) {
	s := settings{username: c.Username, password: c.Password, datacenter: c.Datacenter,
		thumbprint: c.Thumbprint, caFile: c.CAFile, insecure: c.Insecure,
		exports: c.MaxParallelExports, disks: c.MaxParallelDisks}
	raw := c.URL
	if raw == "" {
		raw = getenv("GOVC_URL")
	}
	if raw == "" {
		return s, fmt.Errorf("url is not set (nor GOVC_URL)")
	}
	u, err := soap.ParseURL(raw)
	if err != nil || u == nil || u.Host == "" {
		return s, fmt.Errorf("url %q is not a vSphere SDK URL", redactURL(raw))
	}
	if u.Scheme != "https" {
		return s, fmt.Errorf("url %s: only https is supported", redactURL(raw))
	}
	if u.User != nil { // govc accepts user:password@host in GOVC_URL
		if s.username == "" {
			s.username = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && s.password == "" {
			s.password = p
		}
		u.User = nil
	}
	s.u = u
	if s.username == "" {
		s.username = getenv("GOVC_USERNAME")
	}
	if s.password == "" {
		s.password = getenv("GOVC_PASSWORD")
	}
	if s.datacenter == "" {
		s.datacenter = getenv("GOVC_DATACENTER")
	}
	if s.thumbprint == "" && s.caFile == "" && !s.insecure {
		s.thumbprint = getenv("GOVC_THUMBPRINT")
		s.caFile = getenv("GOVC_TLS_CA_CERTS")
		if v := getenv("GOVC_INSECURE"); v != "" {
			if s.insecure, err = strconv.ParseBool(v); err != nil {
				return s, fmt.Errorf("GOVC_INSECURE=%q is not a boolean", v)
			}
		}
	}
	if s.username == "" || s.password == "" {
		return s, fmt.Errorf("username and password are required (or GOVC_USERNAME and GOVC_PASSWORD)")
	}
	n := 0
	for _, set := range []bool{s.thumbprint != "", s.caFile != "", s.insecure} {
		if set {
			n++
		}
	}
	if n > 1 {
		return s, fmt.Errorf("set only one of thumbprint, ca_file and insecure")
	}
	if s.thumbprint != "" {
		if s.thumbprint, err = normalizeThumbprint(s.thumbprint); err != nil {
			return s, err
		}
	}
	if s.exports < 0 || s.disks < 0 {
		return s, fmt.Errorf("max_parallel_exports and max_parallel_disks must not be negative")
	}
	if s.disks == 0 {
		s.disks = 2
	}
	return s, nil
}

// normalizeThumbprint accepts a SHA-1 (or SHA-256) fingerprint in hex, with
// or without colons, in any case, and returns upper-case colon hex: the form
// govmomi compares.
func normalizeThumbprint(tp string) (string, error) {
	clean := strings.ReplaceAll(strings.TrimSpace(tp), ":", "")
	b, err := hex.DecodeString(clean)
	if err != nil || (len(b) != 20 && len(b) != 32) {
		return "", fmt.Errorf("thumbprint %q is not a SHA-1 fingerprint (20 hex bytes, e.g. 52:6C:4E:…)", tp)
	}
	return colonHex(b), nil
}

// where is the SDK URL for messages and logs. set.u never carries user
// information (resolve strips it); this strips it again, so that no
// message can be the one that shows a password.
func (s settings) where() string {
	if s.u == nil {
		return ""
	}
	u := *s.u
	u.User = nil
	return u.String()
}

// redactURL strips user information from a URL string for messages. A
// string that does not parse is replaced whole: it may hold a password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "(unparsable URL)"
		}
		return raw
	}
	u.User = nil
	return u.String()
}
