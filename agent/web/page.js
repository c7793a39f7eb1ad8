// The status page's script: it turns the server-rendered table into a
// board (the campaign's waves as columns, each migration a card) and
// refreshes it from the agent's API. Every value is put in the page as
// text (textContent), never as markup.
(function () {
  'use strict';
  var KEY = 'hyperagent.token';
  var PHASES = ['defined', 'converted', 'converting', 'queued', 'exported', 'pending', 'failed'];
  var body = document.body;
  var every = Math.max(1, parseInt(body.dataset.refresh, 10) || 5) * 1000;
  var tokenRequired = body.dataset.tokenRequired === 'true';
  var timer = null;
  var failingSince = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }

  function token() {
    try { return sessionStorage.getItem(KEY) || ''; } catch (e) { return ''; }
  }

  function setToken(t) {
    try {
      if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY);
    } catch (e) { /* storage refused: the token lasts as long as the page */ }
    memo = t;
  }
  var memo = token();

  function bytes(n) {
    if (n < 1024) return n + ' B';
    var units = 'KMGTPE', i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return n.toFixed(1) + ' ' + units[i] + 'iB';
  }

  function duration(s) {
    s = Math.max(0, Math.round(s));
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }

  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  // AuthError is a 401: the token is missing or wrong.
  function AuthError() { this.message = 'the agent refused the token'; }

  function get(path) {
    var headers = { 'Accept': 'application/json' };
    if (memo) headers['Authorization'] = 'Bearer ' + memo;
    return fetch(path, { headers: headers, cache: 'no-store', credentials: 'omit' }).then(function (r) {
      if (r.status === 401) throw new AuthError();
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(path + ': ' + r.status + ' ' + (j && j.error || r.statusText));
        return j;
      });
    });
  }

  function refresh() {
    clearTimeout(timer);
    Promise.all([get('/v1/status'), get('/v1/migrations')]).then(function (res) {
      failingSince = null;
      render(res[0], res[1]);
      schedule();
    }, function (err) {
      if (err instanceof AuthError) {
        askToken(memo ? 'The agent refused this token. Type the one of agent { status_token_file }.' : '');
        setToken('');
        return;
      }
      if (!failingSince) failingSince = new Date();
      banner('The agent does not answer (' + (err && err.message || err) + ') since ' +
        failingSince.toLocaleTimeString() + '; the page shows what it said last.');
      body.classList.add('stale');
      schedule();
    });
  }

  function schedule() { timer = setTimeout(refresh, every); }

  function banner(text) {
    var b = $('banner');
    b.textContent = text || '';
    b.hidden = !text;
  }

  function askToken(why) {
    clearTimeout(timer);
    $('auth').hidden = false;
    $('token-form').hidden = false;
    banner(why);
    $('token').focus();
  }

  $('token-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var input = $('token');
    var t = input.value.trim();
    input.value = '';
    if (!t) return;
    setToken(t);
    banner('');
    refresh();
  });

  function render(s, ms) {
    $('auth').hidden = true;
    banner('');
    body.classList.remove('stale');
    $('version').textContent = s.version || '';
    renderCounts(s);
    $('summary').textContent = line(s);
    $('agent').textContent = agentLine(s);
    renderProblems(s.config_errors || []);
    renderConverters(s.converters || []);
    renderBoard(ms);
    $('table-wrap').hidden = true;
    $('updated').textContent = 'As of ' + new Date().toLocaleString() + '.';
  }

  function renderCounts(s) {
    var ul = clear($('counts'));
    PHASES.forEach(function (ph) {
      var n = (s.phases || {})[ph];
      if (!n) return;
      var li = el('li', 'count');
      li.dataset.phase = ph;
      li.appendChild(el('span', 'n', n));
      li.appendChild(document.createTextNode(' ' + ph));
      ul.appendChild(li);
    });
  }

  // line is Status.Line's: "12 defined, 3 converting; 2 in progress".
  function line(s) {
    var parts = PHASES.filter(function (ph) { return (s.phases || {})[ph] > 0; })
      .map(function (ph) { return s.phases[ph] + ' ' + ph; });
    var out = parts.length ? parts.join(', ') : 'no migrations';
    var extra = [];
    if (s.out_of_sync > 0) extra.push(s.out_of_sync + (s.auto_apply ? ' in progress' : ' to apply (auto_apply is off)'));
    if ((s.retrying || []).length) extra.push(s.retrying.length + ' retrying');
    if (s.suspended > 0) extra.push(s.suspended + ' suspended');
    if ((s.config_errors || []).length) extra.push('configuration has ' + s.config_errors.length + ' error(s), running the last good one');
    if (s.last_error) extra.push('last pass failed');
    return extra.length ? out + '; ' + extra.join('; ') : out;
  }

  function agentLine(s) {
    var out = (s.auto_apply ? 'auto_apply on' : 'auto_apply off') + '; ' + s.passes + ' passes';
    if (s.last_pass) out += '; the last began at ' + clock(s.last_pass) + ' and took ' + duration(s.last_pass_took_ns / 1e9);
    if (s.next_pass) out += '; the next is due at ' + clock(s.next_pass);
    if (!s.ready) out += '; no configuration has loaded yet';
    if (s.last_error) out += '; the last pass failed: ' + s.last_error;
    return out;
  }

  // list fills the section id with a title and one item per value
  // (none: the section is hidden).
  function list(id, title, values, item) {
    var sec = clear($(id));
    sec.hidden = values.length === 0;
    if (!values.length) return;
    sec.appendChild(el('h2', '', title));
    var ul = sec.appendChild(el('ul'));
    values.forEach(function (v) { ul.appendChild(item(v)); });
  }

  function renderProblems(diags) {
    list('problems', 'The configuration does not load (the last good one runs)', diags, function (d) {
      return el('li', '', d.file + ':' + d.line + ':' + d.column + ': ' + d.summary + (d.detail ? ': ' + d.detail : ''));
    });
  }

  function renderConverters(cs) {
    list('converters', 'Converters', cs, function (c) {
      var li = el('li');
      li.dataset.live = String(c.live);
      li.appendChild(el('b', '', c.name));
      li.appendChild(document.createTextNode(': ' + (!c.known ? 'health unknown' : c.live ? 'live' : 'not live') +
        '; ' + c.queued + ' queued, ' + c.processing + ' processing'));
      li.appendChild(el('br'));
      li.appendChild(el('span', 'muted', c.detail));
      return li;
    });
  }

  function renderBoard(ms) {
    var board = clear($('board'));
    board.hidden = false;
    if (!ms.planned) {
      board.appendChild(el('p', '', 'No pass has planned yet.'));
      return;
    }
    var waves = {};
    ms.migrations.forEach(function (m) { (waves[m.wave] = waves[m.wave] || []).push(m); });
    Object.keys(waves).map(Number).sort(function (a, b) { return a - b; }).forEach(function (w) {
      var ms = waves[w];
      var col = el('section', 'wave');
      col.dataset.wave = String(w);
      var h = col.appendChild(el('h2', '', 'Wave ' + w));
      var done = ms.filter(function (m) { return m.phase === 'defined'; }).length;
      h.appendChild(el('span', 'muted', done + ' of ' + ms.length + ' defined'));
      ms.forEach(function (m) { col.appendChild(card(m)); });
      board.appendChild(col);
    });
  }

  function card(m) {
    var c = el('article', 'card');
    c.dataset.address = m.address;
    c.dataset.phase = m.phase;
    var top = c.appendChild(el('div', 'top'));
    top.appendChild(el('span', 'addr', m.address));
    var badge = top.appendChild(el('span', 'phase', m.phase));
    badge.dataset.phase = m.phase;
    if (m.step) {
      var step = m.step + ' ' + (m.step_state || '');
      if (m.job_id) step += ' · job ' + m.job_id + ', attempt ' + m.attempt;
      c.appendChild(el('p', 'step muted', step));
    }
    var note = noteOf(m);
    if (note) c.appendChild(el('p', 'note', note));
    if (m.progress) progress(c, m.progress);
    if (m.last_error) {
      var e = m.last_error;
      c.appendChild(el('p', 'error', e.step + ' failed at ' + clock(e.at) + ': ' + e.message));
    }
    if (m.converter) c.appendChild(el('p', 'muted', m.converter));
    return c;
  }

  function noteOf(m) {
    if (m.suspended) return 'suspended';
    if (m.blocked) {
      var errs = (m.findings || []).filter(function (f) { return f.severity === 'error'; })
        .map(function (f) { return f.plugin + ': ' + f.summary; });
      return 'blocked' + (errs.length ? ': ' + errs.join('; ') : '');
    }
    var r = m.retry;
    if (r && r.terminal) return 'waits for its configuration or VM to change';
    if (r && r.next) return 'retry ' + (r.attempts + 1) + ' at ' + clock(r.next);
    return '';
  }

  function progress(c, p) {
    var b = p.bytes;
    var bar = c.appendChild(el('div', 'bar'));
    var fill = bar.appendChild(el('span'));
    var figures = c.appendChild(el('p', 'figures'));
    if (!b || b.total < 0) {
      bar.className = 'bar unknown';
      bar.title = 'progress unknown';
      figures.appendChild(el('span', 'done', b ? bytes(b.done) + ' so far' : 'progress unknown'));
    } else {
      var pct = b.total > 0 ? Math.min(100, Math.floor(b.done * 100 / b.total)) : 100;
      fill.style.width = pct + '%';
      bar.setAttribute('role', 'progressbar');
      bar.setAttribute('aria-valuenow', String(pct));
      figures.appendChild(el('span', 'done', pct + '% (' + bytes(b.done) + ' of ' + bytes(b.total) + ')'));
    }
    if (b && b.rate_bytes_per_second > 0) figures.appendChild(el('span', 'rate', ' · ' + bytes(Math.floor(b.rate_bytes_per_second)) + '/s'));
    if (b && b.eta_seconds !== null && b.eta_seconds !== undefined) figures.appendChild(el('span', 'eta', ' · ETA ' + duration(b.eta_seconds)));
    figures.appendChild(el('span', 'elapsed muted', ' · ' + duration(p.elapsed_seconds) + ' so far'));
  }

  document.documentElement.classList.add('js');
  if (tokenRequired && !memo && body.dataset.shown !== 'true') {
    askToken('');
  } else {
    refresh();
  }
})();
