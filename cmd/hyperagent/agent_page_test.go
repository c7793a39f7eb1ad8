package main

import (
	"bytes"
	"fmt"
	"image/png"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/hypersdk/hyperagent/agent/webtest"
	"github.com/hypersdk/hyperagent/reconcile"
)

// pageToken is the bearer token of the page test's TCP address.
const pageToken = "5e1f0c9e8d7a6b5c4d3e2f1a0b9c8d7e"

// oddAddr is a migration whose for_each key, and so its VM's name, is
// markup: the page must show it as text.
const oddAddr = `migration.odd["<img src=x onerror=alert(1)>"]`

// pageAgentBlock serves the API on a socket (no token: its mode decides)
// and on a loopback TCP address with a token; passes run only when the
// test asks, and a failure is retried only in an hour.
const pageAgentBlock = `
agent {
  auto_apply        = true
  interval          = "1h"
  retry_min         = "1h"
  retry_max         = "2h"
  status_socket     = %q
  status_addr       = %q
  status_token_file = %q
}
migration "odd" {
  for_each   = toset(["<img src=x onerror=alert(1)>"])
  source     = source.fake.src
  converter  = converter.fake.conv
  target     = target.fake.kvm
  vm         = "/DC1/vm/${each.key}"
  export { dir = "exports" }
  depends_on = [migration.db]
}
`

// pageCard is a card of the board as the browser shows it.
type pageCard struct {
	Address string `json:"address"`
	Phase   string `json:"phase"`
	Wave    string `json:"wave"`
	Text    string `json:"text"`
	Error   string `json:"error"`
	Note    string `json:"note"`
	Unknown bool   `json:"unknown"` // an indeterminate progress bar
}

// boardJS reads the board: its cards, its columns, the counts, and what
// must not be there (an element made of a value, the token).
const boardJS = `(() => ({
  cards: [...document.querySelectorAll('#board .card')].map(c => ({
    address: c.querySelector('.addr').textContent, phase: c.dataset.phase, wave: c.closest('.wave').dataset.wave,
    text: c.textContent, error: (c.querySelector('.error') || {}).textContent || '',
    note: (c.querySelector('.note') || {}).textContent || '', unknown: !!c.querySelector('.bar.unknown')})),
  waves: [...document.querySelectorAll('#board .wave')].map(w => w.dataset.wave),
  counts: Object.fromEntries([...document.querySelectorAll('#counts .count')].map(c => [c.dataset.phase, +c.querySelector('.n').textContent])),
  summary: document.getElementById('summary').textContent,
  imgs: document.querySelectorAll('img').length,
  tableShown: !document.getElementById('table-wrap').hidden,
  html: document.documentElement.outerHTML,
}))()`

type pageBoard struct {
	Cards      []pageCard     `json:"cards"`
	Waves      []string       `json:"waves"`
	Counts     map[string]int `json:"counts"`
	Summary    string         `json:"summary"`
	Imgs       int            `json:"imgs"`
	TableShown bool           `json:"tableShown"`
	HTML       string         `json:"html"`
}

func (b pageBoard) card(t *testing.T, addr string) pageCard {
	t.Helper()
	for _, c := range b.Cards {
		if c.Address == addr {
			return c
		}
	}
	t.Fatalf("no card of %s on the board: %+v", addr, b.Cards)
	return pageCard{}
}

// TestStatusPage opens the agent's status page in a real browser
// (headless chromium) while the real agent runs passes on fakes: without
// JavaScript through an SSH-style tunnel to the socket it is a table;
// with JavaScript on the token-protected TCP address it asks for the
// token, refuses a wrong one, then shows the waves as columns of cards
// with the counts the API gives, the failed migration's error, markup in
// a name as text and no secret; the token outlives a reload; a card
// moves from converting to defined as passes run, without a reload; on
// a phone's width the waves stack. With -update it rewrites
// docs/status-page.png, the README's screenshot.
func TestStatusPage(t *testing.T) {
	bctx := webtest.Browser(t)
	work := t.TempDir()
	sock := filepath.Join(work, "agent.sock")
	tokenFile := filepath.Join(work, "token")
	if err := os.WriteFile(tokenFile, []byte(pageToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := apiRepo(t, fmt.Sprintf(pageAgentBlock, sock, addr, tokenFile))
	// Three observations per job: queued, converting, then done, one
	// pass each, so that the test sees the conversion under way.
	rewrite(t, dir, "rounds = 1", "rounds = 3")
	child := startCLIEnv(t, []string{"HYPERAGENT_LOG=debug", "HYPERAGENT_AGENT_POLL=5ms", "HYPERAGENT_AGENT_NO_EVENTS=1"},
		"agent", "-config="+dir)
	go child.stdout.drain()
	go child.stderr.drain()
	a := &agentChild{cliChild: child, sock: sock}
	c := unixAPI(t, sock)
	eventually(t, "the first pass", func() bool { return c.status().Passes >= 1 })
	for i := 0; c.migration("migration.db").Phase != reconcile.PhaseConverting; i++ {
		if i > 10 {
			t.Fatalf("migration.db not converting after %d passes: %+v", i, c.migration("migration.db"))
		}
		c.reconcile()
	}
	var list struct {
		Migrations []struct {
			Address string          `json:"address"`
			Phase   reconcile.Phase `json:"phase"`
		} `json:"migrations"`
	}
	c.json("GET", "/v1/migrations", "", 200, &list)
	if len(list.Migrations) != 5 {
		t.Fatalf("%d migrations, want 5: %+v", len(list.Migrations), list)
	}

	// Without JavaScript, through the tunnel (no token): the table, one
	// row per migration with the API's phase, markup as text.
	nojs := webtest.Tab(t, bctx)
	if _, err := chromedp.Call(nojs, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	webtest.Do(t, nojs, "open the page without JavaScript", chromedp.Navigate(sshTunnel(t, sock)+"/"))
	type row struct {
		Address string   `json:"address"`
		Phase   string   `json:"phase"`
		Cells   []string `json:"cells"`
	}
	table := webtest.Eval[struct {
		Rows      []row  `json:"rows"`
		Imgs      int    `json:"imgs"`
		BoardShow bool   `json:"boardShown"`
		Agent     string `json:"agent"`
	}](t, nojs, `(() => ({
	  agent: document.getElementById('agent').textContent,
	  rows: [...document.querySelectorAll('#table tbody tr')].map(r => ({address: r.dataset.address, phase: r.dataset.phase,
	    cells: [...r.cells].map(c => c.textContent.trim())})),
	  imgs: document.querySelectorAll('img').length, boardShown: !document.getElementById('board').hidden}))()`)
	if len(table.Rows) != len(list.Migrations) || table.Imgs != 0 || table.BoardShow ||
		!strings.Contains(table.Agent, "auto_apply on; ") || !strings.Contains(table.Agent, " passes; the last began at ") {
		t.Fatalf("the table without JavaScript: %+v", table)
	}
	phases := map[string]string{}
	for _, m := range list.Migrations {
		phases[m.Address] = string(m.Phase)
	}
	for _, r := range table.Rows {
		if phases[r.Address] != r.Phase || len(r.Cells) != 8 || !strings.HasPrefix(r.Cells[1], r.Address) {
			t.Errorf("row %+v, want the phase %q", r, phases[r.Address])
		}
		if r.Address == "migration.bad" && !strings.Contains(r.Cells[7], "login refused for token (sensitive value)") {
			t.Errorf("migration.bad's row does not show its error: %q", r.Cells)
		}
	}
	if phases[oddAddr] == "" {
		t.Errorf("no row shows %s as text: %+v", oddAddr, table.Rows)
	}

	// With JavaScript, on the TCP address that requires the token.
	js := webtest.Tab(t, bctx)
	webtest.Do(t, js, "open the page", chromedp.Navigate("http://"+addr+"/?refresh=1"), chromedp.WaitVisible(chromedp.CSS("#token-form")))
	if html := webtest.Eval[string](t, js, `document.documentElement.outerHTML`); strings.Contains(html, "migration.") {
		t.Error("the page shows migrations before the token is given")
	}
	webtest.Do(t, js, "type a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "00000000000000000000000000000000"),
		chromedp.Click(chromedp.CSS("#token-form button")))
	webtest.Poll(t, js, "the wrong token refused", `document.getElementById('banner').textContent.includes('refused this token')`)
	webtest.Do(t, js, "type the token", chromedp.SendKeys(chromedp.CSS("#token"), pageToken), chromedp.Click(chromedp.CSS("#token-form button")))
	webtest.Poll(t, js, "the board's cards", `document.querySelectorAll('#board .card').length === 5`)

	b := webtest.Eval[pageBoard](t, js, boardJS)
	s := c.status()
	want := map[string]int{}
	for ph, n := range s.Phases {
		if n > 0 {
			want[string(ph)] = n
		}
	}
	if fmt.Sprint(b.Counts) != fmt.Sprint(want) || !strings.HasPrefix(b.Summary, "1 converting, 4 pending") {
		t.Errorf("counts %v (%q), want the API's %v", b.Counts, b.Summary, want)
	}
	if strings.Join(b.Waves, ",") != "0,1" || b.TableShown || b.Imgs != 0 {
		t.Errorf("waves %v, table shown %v, %d img elements", b.Waves, b.TableShown, b.Imgs)
	}
	for _, cd := range b.Cards {
		if cd.Phase != phases[cd.Address] {
			t.Errorf("card %s: phase %s, want %s", cd.Address, cd.Phase, phases[cd.Address])
		}
	}
	if db := b.card(t, "migration.db"); db.Wave != "0" || !db.Unknown || !strings.Contains(db.Text, "progress unknown") || !strings.Contains(db.Text, "attempt 1") {
		t.Errorf("migration.db converting: %+v", db)
	}
	if bad := b.card(t, "migration.bad"); bad.Wave != "0" || !strings.Contains(bad.Error, "export failed") ||
		!strings.Contains(bad.Error, "login refused for token (sensitive value)") || !strings.HasPrefix(bad.Note, "retry 2 at") {
		t.Errorf("migration.bad: %+v", bad)
	}
	if odd := b.card(t, oddAddr); odd.Wave != "1" || odd.Phase != "pending" {
		t.Errorf("%s: %+v", oddAddr, odd)
	}
	for _, secret := range []string{apiSecret, pageToken} {
		if strings.Contains(b.HTML, secret) {
			t.Errorf("the page carries the secret %q", secret)
		}
	}
	if got := webtest.Eval[string](t, js, `sessionStorage.getItem('hyperagent.token')`); got != pageToken {
		t.Errorf("sessionStorage holds %q, want the token", got)
	}
	// A reload keeps the token (this tab's sessionStorage).
	webtest.Do(t, js, "reload", chromedp.Reload())
	webtest.Poll(t, js, "the board after a reload", `document.querySelectorAll('#board .card').length === 5 && document.getElementById('auth').hidden`)

	// The conversion ends as passes run: the card moves while the page
	// is watched, without a reload.
	webtest.Poll(t, js, "migration.db converting", `document.querySelector('#board .card[data-address="migration.db"]').dataset.phase === 'converting'`)
	if err := chromedp.Do(js, chromedp.Evaluate[chromedp.Void](`window.loadedOnce = true`)); err != nil {
		t.Fatal(err)
	}
	for i := 0; !defined(loadState(t, dir), "migration.db"); i++ {
		if i > 10 {
			t.Fatalf("migration.db not defined after %d passes", i)
		}
		c.reconcile()
	}
	webtest.Poll(t, js, "migration.db defined", `window.loadedOnce && document.querySelector('#board .card[data-address="migration.db"]').dataset.phase === 'defined'`)
	if h := webtest.Eval[string](t, js, `document.querySelector('.wave[data-wave="0"] h2').textContent`); !strings.Contains(h, "1 of 2 defined") {
		t.Errorf("wave 0's heading %q", h)
	}

	// Wave 1 starts: its exports and jobs, converting after two passes.
	c.reconcile()
	c.reconcile()
	webtest.Poll(t, js, "wave 1 converting", `document.querySelectorAll('.wave[data-wave="1"] .card[data-phase="converting"]').length === 2`)
	shot, err := chromedp.Run(js, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(shot)); err != nil || cfg.Width != 1280 {
		t.Errorf("screenshot: %v, %+v", err, cfg)
	}
	if *update {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "status-page.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A phone: the page fits its width and the waves stack.
	webtest.Do(t, js, "a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	webtest.Poll(t, js, "the waves stacked on a phone", `(() => {
	  const w = [...document.querySelectorAll('#board .wave')].map(e => e.getBoundingClientRect());
	  return document.documentElement.scrollWidth <= window.innerWidth && w.length === 2 && w[1].top >= w[0].bottom && w[0].width <= window.innerWidth;
	})()`)

	// The converter's health, and a configuration that stops loading:
	// the page says where, while the last good one runs.
	if cv := webtest.Eval[string](t, js, `document.querySelector('#converters li[data-live="true"]').textContent`); !strings.Contains(cv, "converter.fake.conv: live") {
		t.Errorf("converters: %q", cv)
	}
	rewrite(t, dir, `migration "bad" {`, `migration "bad" {
  nonsense = 1`)
	c.reconcile()
	webtest.Poll(t, js, "the configuration's error", `!document.getElementById('problems').hidden &&
	  /main\.hcl:\d+:\d+: Unsupported argument/.test(document.getElementById('problems').textContent) &&
	  document.getElementById('summary').textContent.includes('configuration has 1 error(s)')`)

	// The agent stops: the page says so and keeps what it said last.
	if code := a.stopAndWait(t); code != 0 {
		t.Errorf("the agent exited %d:\n%s", code, a.stderr.String())
	}
	webtest.Poll(t, js, "the page noticing the agent gone", `document.body.classList.contains('stale') &&
	  document.getElementById('banner').textContent.startsWith('The agent does not answer') && document.querySelectorAll('#board .card').length === 5`)
}
