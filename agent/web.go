package agent

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

// The status page is one HTML document: the template, with its style
// and script inlined, so that it needs nothing but the agent (no build
// step, no external assets) and one request shows it all.
//
//go:embed web/page.html.tmpl web/page.css web/page.js
var webFiles embed.FS

var (
	pageTemplate = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{"clock": formatClock}).
			ParseFS(webFiles, "web/page.html.tmpl"))
	pageStyle  = mustRead("web/page.css")
	pageScript = mustRead("web/page.js")
	// pageCSP allows the page's own inline style and script (by hash)
	// and requests to its own origin, nothing else: a value that slipped
	// through escaping still could not run or load anything.
	pageCSP = fmt.Sprintf("default-src 'none'; style-src '%s'; script-src '%s'; connect-src 'self'; img-src data:; "+
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'", cspHash(pageStyle), cspHash(pageScript))
)

func mustRead(name string) string {
	b, err := webFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Refresh bounds the page's ?refresh=SECONDS.
const (
	defaultRefresh = 5
	minRefresh     = 1
	maxRefresh     = 3600
)

// exceptPage serves GET / through page without the token, and every
// other request through guarded: a browser cannot send a bearer token
// when it opens a URL, so the page comes without data and asks for the
// token, which its script then sends with each API request.
func exceptPage(page, guarded http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			page.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// servePage renders the status page. With the data the API serves (when
// the request may see it: no token is required, or it carries it) the
// page holds the campaign as a plain table, readable without JavaScript;
// its script turns it into a board of waves and cards and refreshes it
// from /v1/status and /v1/migrations.
func (a *Agent) servePage(tokenSum []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refresh := defaultRefresh
		if v := r.URL.Query().Get("refresh"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < minRefresh || n > maxRefresh {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("refresh=%q: want whole seconds from %d to %d", v, minRefresh, maxRefresh))
				return
			}
			refresh = n
		}
		v := pageView{Refresh: refresh, TokenRequired: tokenSum != nil, Style: template.CSS(pageStyle), Script: template.JS(pageScript)}
		if tokenSum == nil || hasToken(tokenSum, r) {
			v.fill(a.Status(), a.Migrations(), time.Now())
		}
		var buf bytes.Buffer
		if err := pageTemplate.Execute(&buf, v); err != nil {
			writeError(w, http.StatusInternalServerError, "rendering the status page: "+err.Error())
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(buf.Bytes())
	}
}
