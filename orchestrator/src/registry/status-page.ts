import type { FastifyInstance } from 'fastify';

/** How often the page asks `/v1/status` again. */
export const STATUS_REFRESH_MS = 2_000;

/**
 * The status page's own policy: only its script, its stylesheet and `/v1/status` from this origin; nothing
 * inline, nothing from elsewhere.
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AIVA orchestrator</title>
<link rel="stylesheet" href="/status.css">
<script src="/status.js" defer></script>
</head>
<body>
<header>
<h1>AIVA orchestrator</h1>
<p id="summary">Loading…</p>
</header>
<main>
<section aria-labelledby="supergraph-title">
<h2 id="supergraph-title">Supergraph</h2>
<div id="composition"></div>
</section>
<section aria-labelledby="services-title">
<h2 id="services-title">Services</h2>
<div id="services"></div>
</section>
<section id="routes-section" aria-labelledby="routes-title" hidden>
<h2 id="routes-title">Routes</h2>
<div id="routes"></div>
</section>
<section id="processes-section" aria-labelledby="processes-title" hidden>
<h2 id="processes-title">Processes</h2>
<div id="processes"></div>
</section>
</main>
<footer><span id="updated"></span></footer>
</body>
</html>
`;

const PAGE_CSS = `
:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #6e7781; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid #d0d7de; padding-bottom: .25rem; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
table { border-collapse: collapse; width: 100%; margin-bottom: .5rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #d0d7de; vertical-align: top; }
th { font-weight: 600; font-size: .85rem; color: var(--muted); }
code, .mono { font-family: ui-monospace, monospace; font-size: .85rem; }
.healthy, .ok, .running, .closed { color: var(--ok); }
.unhealthy, .mismatch, .failed, .crash-loop, .open, .stopped { color: var(--bad); font-weight: 600; }
.starting, .restarting, .half-open, .unknown { color: var(--warn); }
.reason, .muted { color: var(--muted); }
.errors { color: var(--bad); white-space: pre-wrap; }
#summary.down { color: var(--bad); }
`;

const PAGE_JS = `'use strict';
(function () {
  var REFRESH_MS = ${STATUS_REFRESH_MS};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === 'text') node.textContent = attrs[key];
      else if (key === 'className') node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }
  function text(value) { return document.createTextNode(value === null || value === undefined ? '' : String(value)); }
  function ago(iso) {
    if (!iso) return '';
    var seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + ' s ago';
    if (seconds < 3600) return Math.round(seconds / 60) + ' min ago';
    return Math.round(seconds / 3600) + ' h ago';
  }
  function table(headers, rows) {
    return el('table', {}, [
      el('thead', {}, [el('tr', {}, headers.map(function (h) { return el('th', { text: h }); }))]),
      el('tbody', {}, rows),
    ]);
  }
  function cell(value, className) { return el('td', className ? { className: className, text: value } : { text: value }); }
  function replace(id, children) {
    var target = document.getElementById(id);
    while (target.firstChild) target.removeChild(target.firstChild);
    children.forEach(function (child) { target.appendChild(child); });
  }

  function instanceRow(i) {
    var health = el('td', { className: 'health ' + i.health }, [text(i.health)]);
    if (i.healthReason) health.appendChild(el('div', { className: 'reason', text: i.healthReason }));
    var load = i.load ? i.load.inflight + ' in flight, ' + i.load.requestsTotal + ' served' : '';
    return el('tr', { 'data-instance': i.instanceId, className: i.routable ? 'routable' : 'not-routable' }, [
      el('td', { className: 'mono', text: i.instanceId + (i.kind === 'gateway' ? ' (gateway)' : '') }),
      cell(i.url, 'mono'),
      cell(i.source + (i.slot ? ' · ' + i.slot : '')),
      health,
      cell(i.schema, 'schema ' + i.schema),
      cell(i.routable ? 'yes' : 'no', i.routable ? 'ok' : 'unknown'),
      cell(i.breaker, 'breaker ' + i.breaker),
      cell(i.requestRate + ' /s'),
      cell(load),
      cell(i.version),
      cell(ago(i.startedAt)),
      cell(ago(i.lastHeartbeat)),
    ]);
  }

  function renderServices(services) {
    if (services.length === 0) return [el('p', { className: 'muted', text: 'No services known yet.' })];
    return services.map(function (s) {
      var title = el('h3', { text: s.name + ' — ' + s.routable + ' of ' + s.instances.length + ' routable' });
      if (s.instances.length === 0) {
        return el('div', { 'data-service': s.name }, [title, el('p', { className: 'muted', text: 'No instances.' })]);
      }
      return el('div', { 'data-service': s.name }, [
        title,
        table(
          ['Instance', 'URL', 'Source', 'Health', 'Schema', 'Routed', 'Breaker', 'Rate', 'Load', 'Version',
            'Started', 'Last heartbeat'],
          s.instances.map(instanceRow),
        ),
      ]);
    });
  }

  function renderComposition(c) {
    var parts = [];
    if (c.served) {
      parts.push(el('p', { id: 'served' }, [
        text('Serving '), el('code', { text: c.served.hash.slice(0, 12) }),
        text(' (' + c.mode + ', ' + (c.mode === 'live' ? 'composed ' : 'loaded ') + ago(c.served.at) + ') from '),
        text(c.served.sources.map(function (s) {
          return s.service + ' (' + (s.from === 'file' ? 'file' : s.from === 'last-good' ? 'last good, ' + s.instanceId : s.instanceId) + ')';
        }).join(', ')),
      ]));
    } else {
      parts.push(el('p', { id: 'served', className: 'failed', text: 'No supergraph to serve.' }));
    }
    var last = c.lastAttempt;
    if (last && last.ok) {
      parts.push(el('p', { id: 'last-composition', className: 'ok', text: 'Last composition succeeded ' + ago(last.at) + '.' }));
    } else if (last) {
      parts.push(el('div', { id: 'last-composition', className: 'failed' }, [
        el('p', { text: 'Last composition failed ' + ago(last.at) + '; the last good supergraph stays:' }),
        el('ul', { className: 'errors' }, last.errors.map(function (e) { return el('li', { text: e }); })),
      ]));
    }
    if (c.configProblems.length > 0) {
      parts.push(el('ul', { className: 'errors' }, c.configProblems.map(function (e) { return el('li', { text: e }); })));
    }
    return parts;
  }

  function renderProcesses(processes) {
    return [table(['Slot', 'Service', 'PID', 'State', 'Restarts', 'Started', 'Last exit', 'Reason'],
      processes.map(function (p) {
        var exit = p.lastExit
          ? (p.lastExit.signal ? 'signal ' + p.lastExit.signal : 'code ' + p.lastExit.code) + ', ' + ago(p.lastExit.at)
          : '';
        return el('tr', { 'data-slot': p.slot }, [
          cell(p.slot, 'mono'), cell(p.service), cell(p.pid), cell(p.state, 'state ' + p.state), cell(p.restarts),
          cell(ago(p.startedAt)), cell(exit), cell(p.reason || '', 'reason'),
        ]);
      }))];
  }

  function renderRoutes(routes, conflicts) {
    var parts = [table(['Prefix', 'Service', 'WebSocket'], routes.map(function (r) {
      return el('tr', {}, [cell(r.prefix, 'mono'), cell(r.service), cell(r.websocket ? 'yes' : 'no')]);
    }))];
    conflicts.forEach(function (c) {
      parts.push(el('p', { className: 'failed', text: c.prefix + ': declared by ' + c.ignored + ', kept by ' + c.keptBy }));
    });
    return parts;
  }

  function render(status) {
    var o = status.orchestrator;
    var summary = document.getElementById('summary');
    summary.className = '';
    summary.textContent = 'Store: ' + o.store + ' · supergraph: ' + o.mode + ' · up ' + o.uptimeSeconds + ' s' +
      (o.leader ? ' · runs the probes' : ' · follower') + (o.registrationOpen ? '' : ' · registration closed');
    replace('composition', renderComposition(status.composition));
    replace('services', renderServices(status.services));
    var hasRoutes = status.routes.length > 0 || status.routeConflicts.length > 0;
    document.getElementById('routes-section').hidden = !hasRoutes;
    if (hasRoutes) replace('routes', renderRoutes(status.routes, status.routeConflicts));
    document.getElementById('processes-section').hidden = !status.processes;
    if (status.processes) replace('processes', renderProcesses(status.processes));
    document.getElementById('updated').textContent = 'Updated ' + new Date(status.generatedAt).toLocaleTimeString();
  }

  function refresh() {
    fetch('/v1/status', { headers: { accept: 'application/json' }, cache: 'no-store' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(render)
      .catch(function (error) {
        var summary = document.getElementById('summary');
        summary.className = 'down';
        summary.textContent = 'Orchestrator unreachable (' + error.message + '); retrying.';
      })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }
  refresh();
})();
`;

/** `GET /` (the page), `/status.js` and `/status.css`: a plain page that renders `/v1/status` every 2 s. */
export function registerStatusPage(app: FastifyInstance): void {
  app.get('/', async (_request, reply) =>
    reply
      .header('content-security-policy', PAGE_CSP)
      .header('cache-control', 'no-cache')
      .type('text/html; charset=utf-8')
      .send(PAGE_HTML),
  );
  app.get('/status.js', async (_request, reply) =>
    reply.header('cache-control', 'no-cache').type('text/javascript; charset=utf-8').send(PAGE_JS),
  );
  app.get('/status.css', async (_request, reply) =>
    reply.header('cache-control', 'no-cache').type('text/css; charset=utf-8').send(PAGE_CSS),
  );
  // Browsers ask for it; there is none.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());
}
