/**
 * The status page as one HTML document: server-rendered, no external assets (inline style and script, allowed by
 * a nonce), readable without JavaScript. Everything that comes from outside (names, domains, CA and deployer
 * messages, ACM data) goes through esc(). The script only adds the "renew now" buttons: it asks for the API token
 * (kept in sessionStorage, never in the page or the URL), POSTs /v1/renew and follows the job.
 */
import type { EndpointStatus, ServedStatus } from '../../watch/watcher.js';
import type { CertView, StatusView } from './view.js';

/** HTML-escapes text for element content and double-quoted attributes. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(
    /[&<>"'`]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' })[c]!,
  );
}

const when = (iso?: string) => (iso ? esc(iso.slice(0, 16).replace('T', ' ')) : '-');

function badge(kind: 'ok' | 'warn' | 'bad' | 'off', text: string): string {
  return `<span class="badge ${kind}">${esc(text)}</span>`;
}

/** Lifetime from notBefore to notAfter, elapsed part shaded, markers at "now" and the planned renewal. */
function lifetimeBar(c: CertView, nowMs: number): string {
  if (!c.notBefore || !c.row.notAfter) return '<span class="muted">no certificate</span>';
  const from = Date.parse(c.notBefore);
  const to = Date.parse(c.row.notAfter);
  const span = Math.max(1, to - from);
  const pct = (t: number) => Math.max(0, Math.min(100, ((t - from) / span) * 100)).toFixed(2);
  const nowPct = pct(nowMs);
  const renew = c.plannedRenewal ? Date.parse(c.plannedRenewal) : undefined;
  const leftFraction = (to - nowMs) / span;
  const tone = leftFraction <= 0 ? 'bad' : renew !== undefined && nowMs >= renew ? 'warn' : 'ok';
  const renewMark =
    renew !== undefined
      ? `<line class="renew" x1="${pct(renew)}" x2="${pct(renew)}" y1="0" y2="12"><title>planned renewal ${when(c.plannedRenewal)}</title></line>`
      : '';
  return `<svg class="bar" viewBox="0 0 100 12" preserveAspectRatio="none" role="img" aria-label="lifetime: ${esc(Math.max(0, Math.round(leftFraction * 100)))}% left">
<rect class="track" x="0" y="2" width="100" height="8"></rect><rect class="used ${tone}" x="0" y="2" width="${nowPct}" height="8"></rect>${renewMark}
<line class="now" x1="${nowPct}" x2="${nowPct}" y1="0" y2="12"><title>now</title></line></svg>
<div class="meta">${when(c.notBefore)} → ${when(c.row.notAfter)}<br>renewal ${c.plannedRenewal ? `planned ${when(c.plannedRenewal)}` : '-'}${renew !== undefined && nowMs > renew + 3600_000 ? ` ${badge('warn', 'overdue')}` : ''}</div>`;
}

function stateCell(c: CertView): string {
  const r = c.row;
  const v = r.validity;
  const notDeployed = c.deployed === false;
  const inRenewal = r.health === 'expiring';
  const main =
    v === 'valid'
      ? notDeployed
        ? badge('bad', 'not deployed')
        : c.problem
          ? badge('bad', 'danger')
          : inRenewal
            ? badge('warn', 'renewing')
            : badge('ok', 'valid')
      : badge(v === 'placeholder' || v === 'missing' ? 'warn' : 'bad', v);
  const plan = r.plan ? `<div class="meta">${esc(r.plan.detail)}</div>` : '';
  const conf = r.configured ? '' : `<div class="meta">${badge('off', 'not in config')}</div>`;
  return `${main}${plan}${conf}`;
}

function attemptCell(c: CertView): string {
  const a = c.row.lastAttempt;
  if (!a) return '<span class="muted">none yet</span>';
  const kind = a.result === 'failure' ? 'bad' : a.result === 'success' ? 'ok' : 'off';
  const failures = c.row.failures ? ` <span class="meta">${esc(c.row.failures)} in a row</span>` : '';
  const msg = a.message
    ? `<div class="msg">${esc(a.message)}${a.code ? ` <code>${esc(a.code)}</code>` : ''}</div>`
    : '';
  const fix = c.lastHint ? `<div class="fix"><strong>Fix:</strong> ${esc(c.lastHint)}</div>` : '';
  const next =
    a.result === 'failure' && c.row.nextAttemptAfter
      ? `<div class="meta">next try after ${when(c.row.nextAttemptAfter)}</div>`
      : '';
  return `${badge(kind, a.result)} ${when(a.at)}${failures}${msg}${fix}${next}`;
}

function servedItem(s: ServedStatus): string {
  if (s.error)
    return `<li>${esc(s.address)} (SNI ${esc(s.sni)}): ${badge('bad', 'unreachable')} ${esc(s.error)}</li>`;
  const ok =
    s.matches === undefined
      ? badge('off', 'serves')
      : s.matches
        ? badge('ok', 'serves live')
        : badge('bad', 'serves another');
  return `<li>${esc(s.address)} (SNI ${esc(s.sni)}): ${ok} serial <code>${esc(s.servedSerial)}</code>, until ${when(s.notAfter)} <span class="meta">checked ${when(s.checkedAt)}</span></li>`;
}

function deployCell(c: CertView): string {
  if (!c.deployers.length && !c.served.length) return '<span class="muted">files only</span>';
  const items = c.deployers.map(
    (d) =>
      `<li>${esc(d.label)}: ${d.ok === undefined ? badge('off', 'not yet') : d.ok ? badge('ok', 'ok') : badge('bad', 'failed')}${d.detail ? ` <span class="msg">${esc(d.detail)}</span>` : ''}</li>`,
  );
  return `<ul>${items.join('')}${c.served.map(servedItem).join('')}</ul>`;
}

function certRow(c: CertView, nowMs: number, canRenew: boolean): string {
  const r = c.row;
  const facts = [
    c.profile && `profile ${esc(c.profile)}`,
    c.keyType && esc(c.keyType),
    c.issuer && `issuer ${esc(c.issuer)}`,
    r.serial && `serial <code>${esc(r.serial)}</code>`,
  ].filter(Boolean);
  const days = r.daysLeft === undefined ? '-' : esc(r.daysLeft);
  const renew =
    canRenew && r.configured
      ? `<button type="button" class="renew" data-name="${esc(r.name)}" hidden>Renew now</button><output class="job" aria-live="polite"></output>`
      : '';
  return `<tr data-cert="${esc(r.name)}">
<td><strong class="name">${esc(r.name)}</strong><div class="names">${r.domains.map(esc).join('<br>')}</div><div class="meta">${facts.join(' · ') || '&nbsp;'}</div></td>
<td class="life">${lifetimeBar(c, nowMs)}</td>
<td class="num">${days}</td>
<td>${stateCell(c)}</td>
<td>${attemptCell(c)}</td>
<td>${deployCell(c)}</td>
<td>${renew}</td>
</tr>`;
}

function auditSection(v: StatusView): string {
  const a = v.audit;
  if (!a) return '';
  const run = a.lastRun
    ? `last run ${when(a.lastRun.at)}: ${a.lastRun.ok ? badge('ok', 'ok') : `${badge('bad', 'failed')} ${esc(a.lastRun.error?.message)}${a.lastRun.error?.hint ? ` <span class="fix"><strong>Fix:</strong> ${esc(a.lastRun.error.hint)}</span>` : ''}`}`
    : 'not run yet';
  const rows = a.findings.map(
    (
      f,
    ) => `<tr><td>${badge(f.severity === 'critical' ? 'bad' : 'warn', f.severity)}</td><td>${esc(f.rule)}</td><td>${esc(f.domain)}<div class="meta"><code>${esc(f.arn)}</code> (${esc(f.region)})</div></td>
<td>${esc(f.message)}<div class="fix"><strong>Fix:</strong> ${esc(f.fix)}</div>${f.inUseBy.length ? `<div class="meta">used by ${f.inUseBy.map(esc).join(', ')}</div>` : ''}</td></tr>`,
  );
  return `<section id="acm"><h2>ACM audit</h2><p>Regions ${a.regions.map(esc).join(', ')}; ${run}${a.nextRunAt ? `; next ${when(a.nextRunAt)}` : ''}.</p>
${rows.length ? `<table><thead><tr><th>Severity</th><th>Rule</th><th>Certificate</th><th>Finding</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>` : '<p class="muted">No findings.</p>'}</section>`;
}

function endpointRow(s: EndpointStatus): string {
  const state = !s.checkedAt
    ? badge('off', 'not checked yet')
    : s.problems.length
      ? s.problems.map((p) => badge(p === 'expiring' ? 'warn' : 'bad', p)).join(' ')
      : badge('ok', 'ok');
  const cert = s.reachable
    ? `serial <code>${esc(s.serial)}</code><div class="meta">issuer ${esc(s.issuer)}${s.trustError ? ` · ${esc(s.trustError)}` : ''}</div>`
    : s.error
      ? `<span class="msg">${esc(s.error)}</span>`
      : '';
  return `<tr data-endpoint="${esc(s.label)}"><td><strong>${esc(s.label)}</strong><div class="meta">${esc(s.address)}${s.sni ? ` · SNI ${esc(s.sni)}` : ''}</div></td><td>${state}</td>
<td class="num">${s.daysLeft === undefined ? '-' : esc(s.daysLeft)}</td><td>${when(s.notAfter)}</td><td>${cert}</td><td>${when(s.checkedAt)}</td></tr>`;
}

const STYLE = `
:root{--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--off:#57606a;--line:#d0d7de;color-scheme:light}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#fff}
header,section,footer{padding:0 1.5rem}header{border-bottom:1px solid var(--line);padding-bottom:.5rem}
h1{font-size:1.4rem;margin:1rem 0 .25rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.45rem .5rem;border-bottom:1px solid var(--line)}
th{font-weight:600;background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
ul{margin:0;padding-left:1rem}code{font-size:.85em;word-break:break-all}
.meta,.muted{color:var(--off);font-size:.85em}.names{font-size:.9em}.msg{word-break:break-word}
.fix{margin-top:.2rem;font-size:.9em}.badge{display:inline-block;border-radius:1em;padding:0 .55em;font-size:.8em;font-weight:600;color:#fff;background:var(--off)}
.badge.ok{background:var(--ok)}.badge.warn{background:var(--warn)}.badge.bad{background:var(--bad)}
td.life{min-width:12rem}svg.bar{width:100%;height:14px;display:block}
.track{fill:#eaeef2}.used.ok{fill:#8cd9a0}.used.warn{fill:#f2cc60}.used.bad{fill:#ff8182}
line.now{stroke:#1f2328;stroke-width:.8}line.renew{stroke:#0969da;stroke-width:.8;stroke-dasharray:2 1}
.legend .now{border-left:2px solid #1f2328;padding-left:.3em}.legend .renew{border-left:2px dashed #0969da;padding-left:.3em}
button.renew{font:inherit;padding:.2rem .6rem;cursor:pointer;white-space:nowrap}output.job{display:block;font-size:.85em;margin-top:.25rem}
output.job[data-state=succeeded]{color:var(--ok)}output.job[data-state=failed]{color:var(--bad)}
dialog{border:1px solid var(--line);border-radius:6px}dialog input{width:22rem;max-width:100%}
`;

const SCRIPT = `
(() => {
  const KEY = 'certkeeper.apiToken';
  const needsToken = document.body.dataset.tokenRequired === 'true';
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const askToken = () => new Promise((resolve) => {
    input.value = '';
    dialog.returnValue = '';
    dialog.addEventListener('close', () => {
      const t = dialog.returnValue === 'ok' ? input.value.trim() : '';
      if (t) sessionStorage.setItem(KEY, t);
      resolve(t || undefined);
    }, { once: true });
    dialog.showModal();
  });
  const show = (out, state, text) => { out.dataset.state = state; out.textContent = text; };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  async function follow(out, id) {
    for (let i = 0; i < 1200; i++) {
      const res = await fetch('/v1/jobs/' + encodeURIComponent(id), { cache: 'no-store' });
      if (!res.ok) { show(out, 'failed', 'cannot read job ' + id + ': HTTP ' + res.status); return; }
      const job = await res.json();
      if (['succeeded', 'failed', 'cancelled'].includes(job.state)) {
        const r = (job.results || [])[0];
        const why = r ? r.status + (r.reason ? ': ' + r.reason : '') : '';
        show(out, job.state, 'job ' + job.state + (why ? ' — ' + why : '') + ' (reload the page for the new state)');
        return;
      }
      show(out, job.state, 'job ' + job.state + '…');
      await sleep(i < 10 ? 500 : 2000);
    }
    show(out, 'failed', 'stopped following the job; see GET /v1/jobs/' + id);
  }
  async function renew(button) {
    const out = button.nextElementSibling;
    const token = needsToken ? sessionStorage.getItem(KEY) || await askToken() : undefined;
    if (needsToken && !token) { show(out, 'failed', 'no token given: nothing was started'); return; }
    button.disabled = true;
    try {
      const headers = { 'content-type': 'application/json' };
      if (token) headers.authorization = 'Bearer ' + token;
      const res = await fetch('/v1/renew', {
        method: 'POST',
        headers,
        body: JSON.stringify({ names: [button.dataset.name], force: true }),
      });
      const body = await res.json().catch(() => ({}));
      if (res.status === 401) { sessionStorage.removeItem(KEY); show(out, 'failed', 'the token was refused; click again to enter it'); return; }
      if (!res.ok) { show(out, 'failed', (body.error && body.error.message) || 'HTTP ' + res.status); return; }
      show(out, body.state, 'job ' + body.jobId + ' ' + body.state + '…');
      await follow(out, body.jobId);
    } catch (err) {
      show(out, 'failed', String(err));
    } finally {
      button.disabled = false;
    }
  }
  for (const b of document.querySelectorAll('button.renew')) {
    b.hidden = false;
    b.addEventListener('click', () => renew(b));
  }
  const forget = document.getElementById('forget-token');
  if (forget) { forget.hidden = false; forget.addEventListener('click', () => sessionStorage.removeItem(KEY)); }
})();
`;

/** The whole page. `nonce` must be fresh per response and match the Content-Security-Policy header. */
export function renderStatusPage(v: StatusView, nonce: string): string {
  const nowMs = Date.parse(v.now);
  const configured = v.certificates.filter((c) => c.row.configured);
  const problems = configured.filter((c) => c.problem).length;
  const notDeployed = configured.filter((c) => c.deployed === false).length;
  const endpointProblems = v.endpoints.filter((e) => e.problems.length).length;
  const summary = [
    v.shuttingDown
      ? badge('warn', 'shutting down')
      : v.ready
        ? badge('ok', 'ready')
        : badge('bad', 'not ready'),
    `${configured.length} certificate${configured.length === 1 ? '' : 's'}`,
    problems && `${problems} need${problems === 1 ? 's' : ''} attention`,
    notDeployed && `${notDeployed} not deployed`,
    v.endpoints.length &&
      `${v.endpoints.length} watched endpoint${v.endpoints.length === 1 ? '' : 's'}${endpointProblems ? ` (${endpointProblems} with problems)` : ''}`,
  ].filter(Boolean);
  const rows = v.certificates.map((c) => certRow(c, nowMs, v.canRenew)).join('\n');
  const endpoints = v.endpoints.length
    ? `<section id="endpoints"><h2>Watched endpoints</h2><table><thead><tr><th>Endpoint</th><th>State</th><th>Days left</th><th>Expires</th><th>Certificate</th><th>Checked</th></tr></thead><tbody>
${v.endpoints.map(endpointRow).join('\n')}</tbody></table></section>`
    : '';
  const renewHelp = v.canRenew
    ? `<noscript><p class="meta">Without JavaScript, renew with <code>curl -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"names":["NAME"],"force":true}' ${'<'}this address${'>'}/v1/renew</code>.</p></noscript>
<p class="meta"><button type="button" id="forget-token" hidden>Forget the API token</button> ${v.tokenRequired ? '"Renew now" asks for the API token once and keeps it in this browser tab only (sessionStorage).' : '"Renew now" needs no token: none is set, so the API answers loopback only.'}</p>`
    : '<p class="meta">Read-only listener: renew through the API listener (server.listen).</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,"><title>certkeeper status</title><style nonce="${esc(nonce)}">${STYLE}</style></head>
<body data-token-required="${v.tokenRequired}">
<header><h1>certkeeper</h1><p>${summary.join(' · ')} <span class="meta">· version ${esc(v.version)} · as of ${when(v.now)} UTC${v.canRenew ? ' · <a href="/v1/certificates">JSON</a>' : ''} · <a href="/metrics">metrics</a></span></p></header>
<section id="certificates"><h2>Certificates</h2>
<p class="meta legend">Lifetime bar: shaded = elapsed; <span class="now">now</span>; <span class="renew">planned renewal</span>.</p>
<table id="certs"><thead><tr><th>Certificate</th><th>Lifetime</th><th>Days left</th><th>State</th><th>Last attempt</th><th>Deployed to / served</th><th></th></tr></thead>
<tbody>
${rows || '<tr><td colspan="7" class="muted">No certificates configured or stored.</td></tr>'}
</tbody></table>
${renewHelp}
</section>
${auditSection(v)}
${endpoints}
<footer><p class="meta">Times in UTC.</p></footer>
${
  v.canRenew
    ? `<dialog id="token-dialog"><form method="dialog"><p><label>API token<br><input type="password" id="token-input" autocomplete="off" spellcheck="false"></label></p>
<p class="meta">Kept in this tab's sessionStorage only; sent as "Authorization: Bearer" to this daemon.</p><p><button value="ok">Use token</button> <button value="cancel" formnovalidate>Cancel</button></p></form></dialog>
<script nonce="${esc(nonce)}">${SCRIPT}</script>`
    : ''
}
</body></html>
`;
}
