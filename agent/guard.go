package agent

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// guard refuses what a web browser sends on another site's behalf. A page
// the operator has open elsewhere can POST to a loopback address without
// any preflight when the body is a "simple" one (text/plain, a form), and
// a name it controls can be rebound to 127.0.0.1 to read the answers. So:
//
//   - a request that changes something must say it is JSON (which a
//     cross-site page cannot send without a CORS preflight, and the API
//     answers none), must not come from another site by the browser's own
//     Sec-Fetch-Site, and must carry no Origin but its own;
//   - where no token is required (a unix socket, loopback TCP), the Host
//     must be an IP address or localhost: a rebound name is refused.
//
// Clients that are not browsers (hyperagent status, curl, Prometheus)
// send none of these headers and are not affected.
func guard(checkHost bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if checkHost && !unrebindableHost(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf(
				"Host %q is not an IP address or localhost; this address requires no token, so only those names are served (a guard against DNS rebinding)", r.Host))
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			writeError(w, http.StatusForbidden, fmt.Sprintf("a %s request from another site (Sec-Fetch-Site: %s) is refused", r.Method, site))
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
				writeError(w, http.StatusForbidden, fmt.Sprintf("a %s request from origin %q is refused (not this address's own)", r.Method, o))
				return
			}
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("%s %s takes Content-Type: application/json", r.Method, r.URL.Path))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// unrebindableHost says whether a Host header names an IP address or
// localhost (with or without a port).
func unrebindableHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if net.ParseIP(host) != nil {
		return true
	}
	host = strings.ToLower(host)
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
