// Graylane dashboard: polls the control plane's JSON API every 2 s and renders lane groups, traffic
// charts (points accumulated here, in the browser), releases with their controls, the revision log
// with diffs and rollback, and which filters run which rule version. Vanilla JS, no dependencies.
// Every value from the API goes through the `html` template tag, which escapes it.
"use strict";

const POLL_MS = 2000;
const HISTORY_MS = 5 * 60 * 1000;
const TRAFFIC_WINDOW = "30s";
const GAP_MS = 3 * POLL_MS; // a longer silence between two points breaks the line
const REVISION_PAGE = 50;

// ---------------------------------------------------------------------------------------------
// Escaping HTML templates

class Html {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}
const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };
function esc(v) { return String(v).replace(/[&<>"'`]/g, (c) => ESC[c]); }
function part(v) {
  if (v === null || v === undefined || v === false) return "";
  if (v instanceof Html) return v.s;
  if (Array.isArray(v)) return v.map(part).join("");
  return esc(v);
}
/** Tagged template: interpolated values are escaped unless they are Html themselves. */
function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Html(out);
}

// ---------------------------------------------------------------------------------------------
// State

const state = {
  groups: null, groupsError: null,
  status: null, statusError: null,
  releases: null, releasesUnavailable: false, releasesError: null,
  releaseNotes: {}, // release name → { error | ok } from the last operation
  busy: {}, // release name → operation in flight
  revisions: null, revisionsNext: undefined, revisionsError: null, revisionLimit: REVISION_PAGE,
  selected: null, // selected revision number
  details: new Map(), // revision number → full revision (immutable, so cached)
  detailError: null,
  rollbackNote: null,
  traffic: {}, // group → latest summary
  trafficErrors: {},
  history: new Map(), // "group\u0000lane" → { configured: [{t, v}], series: Map(name → [{t, v}]) }
  lastOk: 0, lastError: null,
};
const rendered = {}; // panel id → the key it was last rendered with

// ---------------------------------------------------------------------------------------------
// API

function actor() {
  const v = document.getElementById("actor").value.trim();
  return v || "dashboard";
}

async function api(method, path, body) {
  const headers = { accept: "application/json" };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET") headers["x-graylane-actor"] = actor();
  const token = document.getElementById("token").value.trim();
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, init);
  document.getElementById("auth-needed").hidden = res.status !== 401;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { raw: text }; }
  }
  return { status: res.status, ok: res.ok, data };
}

function errorText(r) {
  const errs = r.data && Array.isArray(r.data.errors) ? r.data.errors : [];
  if (errs.length) return errs.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; ");
  return `HTTP ${r.status}`;
}

async function getJson(path) {
  const r = await api("GET", path);
  if (!r.ok) {
    const e = new Error(errorText(r));
    e.status = r.status;
    throw e;
  }
  return r.data;
}

// ---------------------------------------------------------------------------------------------
// Polling

let timer = 0;
let inFlight = false;
let again = false;

async function poll() {
  if (inFlight) { again = true; return; }
  inFlight = true;
  clearTimeout(timer);
  try {
    await load();
  } catch (e) {
    state.lastError = String(e && e.message ? e.message : e);
  } finally {
    inFlight = false;
    render();
    if (again) { again = false; timer = setTimeout(poll, 0); } else timer = setTimeout(poll, POLL_MS);
  }
}
const refreshSoon = () => poll();

async function load() {
  const [groups, status, releases, revisions] = await Promise.allSettled([
    getJson("/v1/lanegroups"),
    getJson("/v1/status"),
    api("GET", "/v1/releases"),
    getJson(`/v1/revisions?limit=${state.revisionLimit}`),
  ]);
  let failures = 0;

  if (groups.status === "fulfilled") {
    state.groups = (groups.value.lanegroups || []).map((g) => ({ revision: g.revision, group: g.lanegroup, shares: g.configuredShares || {} }));
    state.groupsError = null;
  } else { state.groupsError = groups.reason.message; failures++; }

  if (status.status === "fulfilled") { state.status = status.value; state.statusError = null; }
  else { state.statusError = status.reason.message; failures++; }

  if (releases.status === "fulfilled") {
    const r = releases.value;
    state.releasesUnavailable = r.status === 404;
    if (r.ok) {
      state.releases = Array.isArray(r.data) ? r.data : (r.data && r.data.releases) || [];
      state.releasesError = null;
    } else if (r.status === 404) {
      state.releases = null;
      state.releasesError = null;
    } else state.releasesError = errorText(r);
  } else { state.releasesError = releases.reason.message; failures++; }

  if (revisions.status === "fulfilled") {
    const v = revisions.value;
    state.revisions = Array.isArray(v) ? v : v.revisions || [];
    state.revisionsNext = Array.isArray(v) ? undefined : v.next;
    state.revisionsError = null;
  } else { state.revisionsError = revisions.reason.message; failures++; }

  if (state.groups) {
    const names = state.groups.map((g) => g.group.name);
    const summaries = await Promise.allSettled(names.map((n) => getJson(`/v1/traffic?group=${encodeURIComponent(n)}&window=${TRAFFIC_WINDOW}`)));
    const now = Date.now();
    const traffic = {};
    names.forEach((name, i) => {
      const s = summaries[i];
      if (s.status === "fulfilled") {
        traffic[name] = s.value;
        delete state.trafficErrors[name];
      } else state.trafficErrors[name] = s.reason.message;
    });
    state.traffic = traffic;
    for (const g of state.groups) record(g.group, g.shares, traffic[g.group.name], now);
    prune(now, new Set(names));
  }

  if (failures === 4) throw new Error(state.groupsError || "the control plane does not answer");
  state.lastOk = Date.now();
  state.lastError = null;
}

// ---------------------------------------------------------------------------------------------
// Lane groups: helpers

const baseLane = (g) => g.baseLane || "base";
/** A lane's configured share as the API serves it (GET /v1/lanegroups: `configuredShares`), in percent. */
const configuredPct = (shares, lane) => (shares && Object.hasOwn(shares, lane) ? Math.round(shares[lane] * 10000) / 100 : 0);

/** [{name, weight, services, fallback, match, base}] with the base lane first; weight: the configured share in percent. */
function lanesOf(g, shares) {
  return [
    { name: baseLane(g), weight: configuredPct(shares, baseLane(g)), services: (g.services || []).map((s) => s.name), base: true },
    ...(g.lanes || []).map((l) => ({ name: l.name, weight: configuredPct(shares, l.name), services: l.services || [], fallback: l.fallback || baseLane(g), match: l.match })),
  ];
}

function stringMatch(m) {
  if (!m || typeof m !== "object") return "?";
  if ("exact" in m) return `= ${JSON.stringify(m.exact)}`;
  if ("prefix" in m) return `starts with ${JSON.stringify(m.prefix)}`;
  if ("regex" in m) return `~ /${m.regex}/`;
  if ("present" in m) return "present";
  if ("absent" in m) return "absent";
  return JSON.stringify(m);
}

function matchSummary(match) {
  if (!Array.isArray(match) || match.length === 0) return "";
  return match.map((block) => {
    const c = [];
    for (const [k, m] of Object.entries(block.headers || {})) c.push(`header ${k} ${stringMatch(m)}`);
    for (const [k, m] of Object.entries(block.cookies || {})) c.push(`cookie ${k} ${stringMatch(m)}`);
    for (const [k, m] of Object.entries(block.queryParams || {})) c.push(`query ${k} ${stringMatch(m)}`);
    if (block.uri) c.push(`uri ${stringMatch(block.uri)}`);
    if (block.method) c.push(`method ${block.method.join("|")}`);
    if (block.os) c.push(`os ${block.os.join("|")}`);
    if (block.browser) c.push(`browser ${block.browser.join("|")}`);
    return c.join(" and ");
  }).join(" or ");
}

// ---------------------------------------------------------------------------------------------
// Traffic history (client side)

function historyOf(group, lane) {
  const key = `${group}\u0000${lane}`;
  let h = state.history.get(key);
  if (!h) { h = { configured: [], series: new Map() }; state.history.set(key, h); }
  return h;
}

function push(points, t, v) {
  if (typeof v === "number" && Number.isFinite(v)) points.push({ t, v });
}

function record(group, shares, summary, now) {
  const lanes = lanesOf(group, shares);
  const rows = summary ? summary.services || [] : [];
  const totals = new Map();
  for (const r of rows) totals.set(r.service, (totals.get(r.service) || 0) + r.requests);
  const edge = summary ? summary.edge || [] : [];
  const edgeTotal = edge.reduce((a, e) => a + e.requests, 0);
  for (const lane of lanes) {
    const h = historyOf(group.name, lane.name);
    push(h.configured, now, lane.weight);
    for (const [service, total] of totals) {
      if (total <= 0) continue;
      const row = rows.find((r) => r.service === service && r.lane === lane.name);
      const has = row || lane.services.includes(service) || h.series.has(service);
      if (!has) continue;
      if (!h.series.has(service)) h.series.set(service, []);
      push(h.series.get(service), now, row ? row.observedShare * 100 : 0);
    }
    if (edgeTotal > 0) {
      const e = edge.find((x) => x.lane === lane.name);
      if (e || h.series.has("edge")) {
        if (!h.series.has("edge")) h.series.set("edge", []);
        push(h.series.get("edge"), now, e ? (e.requests / edgeTotal) * 100 : 0);
      }
    }
  }
}

function prune(now, groups) {
  const cut = now - HISTORY_MS;
  for (const [key, h] of state.history) {
    if (!groups.has(key.split("\u0000")[0])) { state.history.delete(key); continue; }
    h.configured = h.configured.filter((p) => p.t >= cut);
    for (const [name, pts] of h.series) {
      const kept = pts.filter((p) => p.t >= cut);
      if (kept.length) h.series.set(name, kept); else h.series.delete(name);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

const pct = (v, digits = 1) => (typeof v === "number" && Number.isFinite(v) ? `${round(v * 100, digits)}%` : "–");
const ms = (v) => (typeof v === "number" && Number.isFinite(v) ? `${round(v, v < 10 ? 1 : 0)} ms` : "–");
// gRPC statuses of a row ("OK 70 · UNAVAILABLE 30"), shown only for lanes with gRPC traffic.
const grpcOf = (rows) => rows.some((r) => Object.keys(r.grpcStatuses ?? {}).length > 0);
const grpcText = (statuses = {}) => Object.entries(statuses).sort(([, a], [, b]) => b - a).map(([n, c]) => `${n} ${c}`).join(" · ") || "–";
function round(v, digits) { const f = 10 ** digits; return Math.round(v * f) / f; }
const shortVersion = (v) => (v ? (v.length > 12 ? `${v.slice(0, 12)}…` : v) : "none");

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, "0");
  const time = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${time}`;
}

function fmtAgo(iso) {
  const t = new Date(iso).getTime();
  if (!Number.isFinite(t)) return "";
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function fmtIn(iso) {
  const t = new Date(iso).getTime();
  if (!Number.isFinite(t)) return "";
  const s = Math.max(0, Math.round((t - Date.now()) / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}

function json(v) {
  const s = JSON.stringify(v);
  return s === undefined ? "undefined" : s;
}

// ---------------------------------------------------------------------------------------------
// Rendering

function setPanel(id, key, build) {
  if (rendered[id] === key) return;
  rendered[id] = key;
  document.getElementById(id).innerHTML = build().s;
}

function render() {
  renderHeader();
  renderGroups();
  renderTraffic();
  renderReleases();
  renderStatus();
  renderRevisions();
  renderDetail();
}

function renderHeader() {
  const conn = document.getElementById("conn");
  if (state.lastError) {
    conn.className = "conn offline";
    conn.textContent = `offline: ${state.lastError}`;
  } else if (state.lastOk) {
    conn.className = "conn live";
    conn.textContent = `live · updated ${fmtTime(new Date(state.lastOk).toISOString())}`;
  }
  const s = state.status;
  setPanel("served", json(s && [s.revision, s.version]), () =>
    s ? html`revision <strong>${s.revision}</strong> · version <code title="${s.version}">${shortVersion(s.version)}</code>` : html``);
}

function errorBox(message, testid = "error") {
  return html`<p class="error" data-testid="${testid}">${message}</p>`;
}

function bar(weight) {
  const w = Math.max(0, Math.min(100, weight));
  return html`<svg class="bar" viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true"><rect class="bar-bg" width="100" height="6"/><rect class="bar-fg" width="${w}" height="6"/></svg>`;
}

function renderGroups() {
  setPanel("groups", json([state.groups, state.groupsError]), () => {
    if (!state.groups) return state.groupsError ? errorBox(state.groupsError) : html`<p class="muted">loading…</p>`;
    const err = state.groupsError ? errorBox(state.groupsError) : "";
    if (state.groups.length === 0) return html`${err}<p class="muted" data-testid="groups-empty">no lane groups yet: <code>graylane apply -f demo/lanegroup.json</code></p>`;
    return html`${err}${state.groups.map(({ revision, group: g, shares }) => html`
      <div class="group card" data-testid="group-${g.name}" data-group="${g.name}">
        <h3>${g.name} <span class="muted small">revision ${revision}</span></h3>
        <div class="kv"><span class="k">services</span> ${(g.services || []).map((s) => html`<span class="svc" title="${["hosts: " + (s.hosts || [s.name]).join(", "), s.paths && s.paths.length ? "paths: " + s.paths.join(", ") : ""].filter(Boolean).join("\n")}">${s.name}${s.paths && s.paths.length ? html`<span class="muted"> ${s.paths.join(" ")}</span>` : ""}</span>`)}</div>
        <div class="kv"><span class="k">headers</span> lane <code>${g.laneHeader}</code> · route <code>${g.routeHeader}</code>${g.overrideHeader ? html` · override <code>${g.overrideHeader}</code> (${g.overrideTrust || "any"})` : ""} · trace <code>${g.traceHeader}</code>${g.stickyKey ? html` · sticky ${g.stickyKey.header ? html`header <code>${g.stickyKey.header}</code>` : html`cookie <code>${g.stickyKey.cookie}</code>`}` : ""}</div>
        <table class="lanes">
          <thead><tr><th>lane</th><th>weight</th><th>match</th><th>services</th><th>fallback</th></tr></thead>
          <tbody>${lanesOf(g, shares).map((l) => html`
            <tr data-testid="lane-${g.name}-${l.name}" data-weight="${l.weight}">
              <td class="lane-name">${l.name}${l.base ? html` <span class="badge">base</span>` : ""}</td>
              <td class="num">${l.weight}%${bar(l.weight)}</td>
              <td class="match">${l.base ? html`<span class="muted">the rest</span>` : matchSummary(l.match) || html`<span class="muted">none</span>`}</td>
              <td>${l.services.join(", ") || html`<span class="muted">none</span>`}</td>
              <td>${l.base ? "" : l.fallback}</td>
            </tr>`)}
          </tbody>
        </table>
      </div>`)}`;
  });
}

const CHART = { w: 480, h: 150, l: 36, r: 10, t: 8, b: 20 };

function pathOf(points, x, y) {
  let d = "";
  let prev = null;
  for (const p of points) {
    d += `${prev === null || p.t - prev > GAP_MS ? "M" : "L"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)} `;
    prev = p.t;
  }
  return d.trim();
}

function chart(group, lane, h, now, seriesNames) {
  const { w, h: H, l, r, t, b } = CHART;
  const t0 = now - HISTORY_MS;
  const x = (tm) => l + ((tm - t0) / HISTORY_MS) * (w - l - r);
  const y = (v) => t + (1 - Math.max(0, Math.min(100, v)) / 100) * (H - t - b);
  const grid = [0, 25, 50, 75, 100].map((v) => html`<line class="grid" x1="${l}" x2="${w - r}" y1="${y(v)}" y2="${y(v)}"/><text class="axis" x="${l - 4}" y="${y(v) + 3}" text-anchor="end">${v}%</text>`);
  const xs = [[t0, "-5m"], [now - HISTORY_MS / 2, "-2.5m"], [now, "now"]].map(([tm, label], i) =>
    html`<text class="axis" x="${x(tm)}" y="${H - 5}" text-anchor="${i === 0 ? "start" : i === 2 ? "end" : "middle"}">${label}</text>`);
  const last = (pts) => pts[pts.length - 1];
  const series = seriesNames.filter((n) => h.series.has(n)).map((n) => {
    const pts = h.series.get(n);
    const p = last(pts);
    const cls = `s${seriesNames.indexOf(n) % 8}`;
    return html`<path class="line ${cls}" data-series="observed-${n}" data-points="${pts.length}" d="${pathOf(pts, x, y)}"/><circle class="dot ${cls}" cx="${x(p.t)}" cy="${y(p.v)}" r="2.5"><title>${n}: ${round(p.v, 1)}%</title></circle>`;
  });
  const c = h.configured;
  const cp = last(c);
  return html`<svg class="chart" data-testid="chart-${group}-${lane}" viewBox="0 0 ${w} ${H}" role="img" aria-label="observed vs configured share of lane ${lane}">
    ${grid}${xs}
    ${c.length ? html`<path class="line configured" data-series="configured" data-points="${c.length}" d="${pathOf(c, x, y)}"/><circle class="dot configured" cx="${x(cp.t)}" cy="${y(cp.v)}" r="2"><title>configured: ${cp.v}%</title></circle>` : ""}
    ${series}
  </svg>`;
}

function renderTraffic() {
  const now = Date.now();
  // Always redrawn: the time axis moves.
  setPanel("traffic", String(now), () => {
    if (!state.groups) return html`<p class="muted">loading…</p>`;
    if (state.groups.length === 0) return html`<p class="muted">no lane groups</p>`;
    return html`${state.groups.map(({ group: g, shares }) => {
      const summary = state.traffic[g.name];
      const rows = summary ? summary.services || [] : [];
      const edge = summary ? summary.edge || [] : [];
      const terr = state.trafficErrors[g.name];
      // One color per series name across the group's charts.
      const names = new Set();
      for (const lane of lanesOf(g, shares)) for (const n of historyOf(g.name, lane.name).series.keys()) names.add(n);
      const seriesNames = [...names].sort((a, b) => (a === "edge") - (b === "edge") || a.localeCompare(b));
      return html`<div class="traffic-group" data-testid="traffic-${g.name}">
        <h3>${g.name} ${summary ? html`<span class="muted small">${rows.reduce((a, r) => a + r.requests, 0)} inbound requests, ${edge.reduce((a, e) => a + e.requests, 0)} at the edge in the last ${Math.round(summary.windowMs / 1000)} s</span>` : ""}</h3>
        ${terr ? errorBox(terr) : ""}
        <div class="legend">
          <span class="legend-item"><svg class="swatch" viewBox="0 0 16 6"><line class="line configured" x1="0" x2="16" y1="3" y2="3"/></svg>configured</span>
          ${seriesNames.map((n, i) => html`<span class="legend-item"><svg class="swatch" viewBox="0 0 16 6"><line class="line s${i % 8}" x1="0" x2="16" y1="3" y2="3"/></svg>${n === "edge" ? "edge decisions" : n}</span>`)}
        </div>
        <div class="lane-charts">${lanesOf(g, shares).map((lane) => {
          const laneRows = rows.filter((r) => r.lane === lane.name);
          const e = edge.find((x) => x.lane === lane.name);
          return html`<div class="lane-traffic card" data-testid="lane-traffic-${g.name}-${lane.name}">
            <h4>${lane.name} <span class="muted small">configured ${lane.weight}%</span></h4>
            ${chart(g.name, lane.name, historyOf(g.name, lane.name), now, seriesNames)}
            ${laneRows.length || e ? html`<table class="stats">
              <thead><tr><th>service</th><th>req</th><th>observed</th><th>configured</th><th>errors</th><th>p50</th><th>p99</th>${grpcOf(laneRows) ? html`<th>gRPC</th>` : ""}</tr></thead>
              <tbody>${laneRows.map((r) => html`<tr data-testid="traffic-row-${g.name}-${lane.name}-${r.service}">
                <td>${r.service}</td><td class="num">${r.requests}</td><td class="num">${pct(r.observedShare)}</td><td class="num">${pct(r.configuredShare)}</td>
                <td class="num ${r.errorRate > 0.05 ? "bad" : r.errorRate > 0.01 ? "warn" : ""}">${pct(r.errorRate, 2)}</td><td class="num">${ms(r.p50Ms)}</td><td class="num">${ms(r.p99Ms)}</td>${grpcOf(laneRows) ? html`<td class="small" data-testid="grpc-${g.name}-${lane.name}-${r.service}">${grpcText(r.grpcStatuses)}</td>` : ""}</tr>`)}
                ${e ? html`<tr class="muted"><td>edge</td><td class="num">${e.requests}</td><td colspan="${grpcOf(laneRows) ? 6 : 5}"></td></tr>` : ""}
              </tbody></table>` : html`<p class="muted small">no requests in the window</p>`}
          </div>`;
        })}</div>
      </div>`;
    })}`;
  });
}

// ---- releases ----

// The buttons; which are enabled is the release's `allowedOperations`, as the API serves it (the
// engine refuses the others with 409, whose message is shown).
const ACTIVE = new Set(["progressing", "paused", "promoted"]); // sorts active releases first
const allowed = (r, op) => Array.isArray(r.allowedOperations) && r.allowedOperations.includes(op);
const OPS = [
  { op: "approve", label: "Approve" },
  { op: "pause", label: "Pause" },
  { op: "resume", label: "Resume" },
  { op: "promote", label: "Promote", confirm: (r) => `Promote release ${r.name}: lane ${r.lane} to 100% now, skipping its remaining steps?` },
  { op: "finish", label: "Finish", confirm: (r) => `Finish release ${r.name}? Lane ${r.lane} goes back to 0% with no match: do it once the base instances run the new version.` },
  { op: "abort", label: "Abort", confirm: (r) => `Abort release ${r.name}? Lane ${r.lane} goes back to 0% and its match to what it was before.` },
  { op: "undo", label: "Undo", confirm: (r) => `Undo release ${r.name}? Lane ${r.lane} goes back to how the previous finished release left it.` },
];

function stepText(s) {
  if (!s || typeof s !== "object") return String(s);
  if ("setWeight" in s) return `set weight ${s.setWeight}%`;
  if ("setMatch" in s) return `set match: ${matchSummary(s.setMatch) || "none"}`;
  if ("pause" in s) return s.pause && s.pause.duration ? `pause ${s.pause.duration}` : "pause until approved";
  if ("analysis" in s) {
    const a = s.analysis || {};
    const bits = Object.entries(a).map(([k, v]) => `${k} ${typeof v === "object" ? json(v) : v}`);
    return `analysis${bits.length ? ": " + bits.join(", ") : ""}`;
  }
  return json(s);
}

function pauseText(r) {
  const p = r.pause;
  if (!p || r.status !== "paused") return "";
  switch (p.reason) {
    case "approval": return "awaiting approval";
    case "confirm": return "awaiting confirmation";
    case "duration": return p.until ? `waiting until ${fmtTime(p.until)} (${fmtIn(p.until)} left)` : "waiting";
    case "manual": return "paused by hand: resume to continue";
    case "inconclusive": return "analysis inconclusive: approve to continue or abort";
    default: return `paused (${p.reason})`;
  }
}

function analysisView(r) {
  const a = r.analysisRun;
  if (!a) return "";
  const intervals = a.intervals || [];
  const lastI = intervals[intervals.length - 1];
  return html`<div class="analysis" data-testid="release-analysis">
    <div><span class="k">analysis</span> step ${a.step + 1}, since ${fmtTime(a.startedAt)}:
      <span class="verdict pass">${a.successes} pass</span> · <span class="verdict fail">${a.failures} fail</span> · <span class="verdict inconclusive">${a.inconclusive} inconclusive</span></div>
    <div class="intervals">${intervals.map((i) => html`<span class="interval ${i.verdict}" title="${fmtTime(i.at)}: ${i.verdict}, ${i.requests} requests"></span>`)}</div>
    ${lastI && lastI.metrics && lastI.metrics.length ? html`<table class="stats">
      <thead><tr><th>metric</th><th>value</th><th>base</th><th>verdict</th><th>reason</th></tr></thead>
      <tbody>${lastI.metrics.map((m) => html`<tr><td>${m.name}</td><td class="num">${m.value === null ? "–" : round(m.value, 4)}</td><td class="num">${m.baseValue === null || m.baseValue === undefined ? "–" : round(m.baseValue, 4)}</td><td><span class="verdict ${m.verdict}">${m.verdict}</span></td><td>${m.reason}</td></tr>`)}</tbody>
    </table>` : ""}
  </div>`;
}

function releaseCard(r) {
  const steps = r.steps || [];
  const done = r.currentStep >= steps.length;
  const note = state.releaseNotes[r.name];
  const busy = state.busy[r.name];
  const events = r.events || [];
  return html`<div class="release card status-${r.status}" data-testid="release-${r.name}" data-release="${r.name}" data-status="${r.status}" data-step="${r.currentStep}" data-weight="${r.weight}">
    <div class="release-head">
      <strong>${r.name}</strong>
      <span class="badge status-${r.status}" data-testid="release-status">${r.status}</span>
      <span class="muted">${r.group}/${r.lane} · ${r.strategy || "canary"}</span>
      <span class="release-weight" data-testid="release-weight">weight ${r.weight}%</span>
      ${bar(r.weight)}
    </div>
    ${pauseText(r) ? html`<div class="pause" data-testid="release-pause-reason">${pauseText(r)} <span class="muted">(step ${Math.min(r.currentStep, steps.length - 1) + 1} of ${steps.length})</span></div>` : ""}
    ${r.message ? html`<div class="message" data-testid="release-message">${r.message}</div>` : ""}
    <ol class="steps">${steps.map((s, i) => html`<li data-testid="release-step-${i}" class="${i < r.currentStep || done ? "done" : i === r.currentStep ? "current" : "todo"}">${stepText(s)}</li>`)}</ol>
    ${analysisView(r)}
    <div class="actions">${OPS.map((o) => html`<button type="button" data-action="release-op" data-op="${o.op}" data-release="${r.name}" data-testid="release-${o.op}"${!allowed(r, o.op) || busy ? html` disabled` : ""}>${busy === o.op ? `${o.label}…` : o.label}</button>`)}</div>
    ${note && note.error ? html`<p class="error" data-testid="release-error">${note.error}</p>` : ""}
    ${note && note.ok ? html`<p class="ok small" data-testid="release-ok">${note.ok}</p>` : ""}
    <div class="muted small">created ${fmtTime(r.createdAt)}${r.createdBy ? ` by ${r.createdBy}` : ""} · updated ${fmtTime(r.updatedAt)}</div>
    ${events.length ? html`<details class="events"><summary>events (${events.length})</summary><ul>${events.slice(-20).reverse().map((e) => html`<li><span class="muted">${fmtTime(e.at)}</span> <span class="badge">${e.type}</span> ${e.message}</li>`)}</ul></details>` : ""}
  </div>`;
}

function renderReleases() {
  const tick = (state.releases || []).some((r) => r.status === "paused" && r.pause && r.pause.until) ? Math.floor(Date.now() / 1000) : 0;
  setPanel("releases", json([state.releases, state.releasesUnavailable, state.releasesError, state.releaseNotes, state.busy, tick]), () => {
    if (state.releasesUnavailable) return html`<p class="muted" data-testid="releases-unavailable">releases unavailable: this control plane has no release engine (GET /v1/releases answers 404)</p>`;
    const err = state.releasesError ? errorBox(state.releasesError) : "";
    if (!state.releases) return err || html`<p class="muted">loading…</p>`;
    if (state.releases.length === 0) return html`${err}<p class="muted" data-testid="releases-empty">no releases</p>`;
    const sorted = [...state.releases].sort((a, b) => (ACTIVE.has(b.status) - ACTIVE.has(a.status)) || String(b.updatedAt).localeCompare(String(a.updatedAt)));
    return html`${err}${sorted.map(releaseCard)}`;
  });
}

async function releaseOp(name, op) {
  const r = (state.releases || []).find((x) => x.name === name);
  const def = OPS.find((o) => o.op === op);
  if (!def) return;
  if (def.confirm && r && !window.confirm(def.confirm(r))) return;
  state.busy[name] = op;
  delete state.releaseNotes[name];
  renderReleases();
  try {
    const res = await api("POST", `/v1/releases/${encodeURIComponent(name)}/${op}`, {});
    if (res.ok && res.data && res.data.release) {
      state.releases = (state.releases || []).map((x) => (x.name === name ? res.data.release : x));
      state.releaseNotes[name] = { ok: `${op}: done` };
    } else if (res.ok) {
      state.releaseNotes[name] = { ok: `${op}: done` };
    } else {
      state.releaseNotes[name] = { error: `${op} refused: ${errorText(res)}` };
    }
  } catch (e) {
    state.releaseNotes[name] = { error: `${op} failed: ${e.message}` };
  } finally {
    delete state.busy[name];
    renderReleases();
    refreshSoon();
  }
}

// ---- status ----

function renderStatus() {
  setPanel("status", json([state.status, state.statusError, Math.floor(Date.now() / 10000)]), () => {
    const s = state.status;
    if (!s) return state.statusError ? errorBox(state.statusError) : html`<p class="muted">loading…</p>`;
    const err = state.statusError ? errorBox(state.statusError) : "";
    const nodes = s.nodes || [];
    const inSync = nodes.filter((n) => n.version && n.version === s.version).length;
    const nacks = nodes.reduce((a, n) => a + (n.subscribers || []).filter((x) => x.lastNack).length, 0);
    return html`${err}
      <p class="summary" data-testid="status-summary">serving version <code title="${s.version}">${shortVersion(s.version)}</code> (revision ${s.revision}) ·
        <strong>${inSync}</strong> of ${nodes.length} node${nodes.length === 1 ? "" : "s"} at it${nacks ? html` · <span class="nack">${nacks} NACK${nacks === 1 ? "" : "s"}</span>` : ""}</p>
      ${nodes.length === 0 ? html`<p class="muted" data-testid="status-empty">no proxies connected</p>` : html`
      <table class="status">
        <thead><tr><th>node / instance</th><th>version</th><th>state</th><th>since</th></tr></thead>
        ${nodes.map((n) => {
          const acked = new Set((n.subscribers || []).filter((x) => x.connected).map((x) => x.ackedVersion));
          const cls = n.version ? (n.version === s.version ? "in-sync" : "behind") : acked.size > 1 ? "mixed" : "none";
          const label = { "in-sync": "in sync", behind: "behind", mixed: "mixed versions", none: acked.size ? "no version" : "disconnected" }[cls];
          return html`<tbody class="node ${cls}" data-testid="node-${n.nodeId}" data-version="${n.version}">
            <tr class="node-row"><td><strong>${n.nodeId}</strong></td><td><code title="${n.version}">${shortVersion(n.version)}</code></td><td><span class="badge ${cls}">${label}</span></td><td class="muted">${(n.subscribers || []).length} subscriber${(n.subscribers || []).length === 1 ? "" : "s"}</td></tr>
            ${(n.subscribers || []).map((x) => html`<tr class="subscriber ${x.connected ? "" : "disconnected"}" data-testid="subscriber-${x.instanceId}">
              <td class="indent">${x.instanceId}</td>
              <td><code title="${x.ackedVersion}">${shortVersion(x.ackedVersion)}</code>${x.pendingVersion ? html` <span class="muted" title="${x.pendingVersion}">(sent ${shortVersion(x.pendingVersion)})</span>` : ""}</td>
              <td>${x.connected ? "connected" : "disconnected"}${x.lastNack ? html`<div class="nack" data-testid="nack">NACK of ${shortVersion(x.lastNack.version)} at ${fmtTime(x.lastNack.at)}: ${x.lastNack.error}</div>` : ""}</td>
              <td class="muted" title="${x.connectedAt}">${fmtAgo(x.connectedAt)}</td>
            </tr>`)}
          </tbody>`;
        })}
      </table>`}`;
  });
}

// ---- revisions ----

function renderRevisions() {
  setPanel("revisions", json([state.revisions, state.revisionsNext, state.revisionsError, state.selected, Math.floor(Date.now() / 10000)]), () => {
    if (!state.revisions) return state.revisionsError ? errorBox(state.revisionsError) : html`<p class="muted">loading…</p>`;
    const err = state.revisionsError ? errorBox(state.revisionsError) : "";
    if (state.revisions.length === 0) return html`${err}<p class="muted" data-testid="revisions-empty">no revisions yet</p>`;
    return html`${err}<table class="revisions">
      <thead><tr><th>#</th><th>time</th><th>actor</th><th>op</th><th>groups</th></tr></thead>
      <tbody>${state.revisions.map((r) => html`<tr data-testid="revision-${r.revision}" data-action="select-revision" data-revision="${r.revision}" class="${state.selected === r.revision ? "selected" : ""}">
        <td><button type="button" class="link" data-action="select-revision" data-revision="${r.revision}">${r.revision}</button></td>
        <td title="${r.time}">${fmtTime(r.time)} <span class="muted small">${fmtAgo(r.time)}</span></td>
        <td class="actor">${r.actor}</td>
        <td><span class="badge op-${r.op}">${r.op}</span>${r.target ? html` <span class="muted">to ${r.target}</span>` : ""}</td>
        <td>${(r.groups || []).join(", ") || r.group || ""}</td>
      </tr>`)}</tbody>
    </table>
    ${state.revisionsNext && state.revisionLimit < 1000 ? html`<button type="button" data-action="more-revisions" data-testid="more-revisions">older revisions</button>` : ""}`;
  });
}

function opLine(o) {
  const path = o.path === "" ? "(whole group)" : o.path;
  const val = (v) => {
    const s = JSON.stringify(v, null, 2);
    return s !== undefined && s.length > 60 ? html`<pre>${s}</pre>` : html`<code>${s}</code>`;
  };
  if (o.op === "add") return html`<li class="op add"><span class="sym">+</span> <code class="path">${path}</code> ${val(o.value)}</li>`;
  if (o.op === "remove") return html`<li class="op remove"><span class="sym">−</span> <code class="path">${path}</code> <span class="muted">was</span> ${val(o.old)}</li>`;
  if (o.op === "replace") return html`<li class="op replace"><span class="sym">~</span> <code class="path">${path}</code> ${"old" in o ? html`${val(o.old)} → ` : ""}${val(o.value)}</li>`;
  return html`<li class="op"><code>${json(o)}</code></li>`;
}

function renderDetail() {
  const n = state.selected;
  const rev = n === null ? undefined : state.details.get(n);
  setPanel("revision-detail", json([n, !!rev, state.detailError, state.rollbackNote, state.status && state.status.revision]), () => {
    if (n === null) return html`<p class="muted">select a revision to see its diff</p>`;
    if (state.detailError) return errorBox(state.detailError);
    if (!rev) return html`<p class="muted">loading revision ${n}…</p>`;
    const current = state.status ? state.status.revision : undefined;
    return html`<div data-testid="revision-diff" data-revision="${rev.revision}">
      <h3>Revision ${rev.revision}</h3>
      <p class="muted">${fmtTime(rev.time)} by <span class="actor">${rev.actor}</span> · ${rev.op}${rev.target ? ` of revision ${rev.target}` : ""}</p>
      ${(rev.diff || []).length === 0 ? html`<p class="muted">no changes</p>` : ""}
      ${(rev.diff || []).map((c) => html`<div class="change" data-testid="change-${c.group}">
        <h4>${c.group} <span class="badge op-${c.action}">${c.action}</span></h4>
        <ul class="patch">${(c.patch || []).map(opLine)}</ul>
      </div>`)}
      <div class="actions">
        <button type="button" data-action="rollback" data-revision="${rev.revision}" data-testid="rollback-button"${rev.revision === current ? html` title="this is the current revision"` : ""}>Roll back to revision ${rev.revision}</button>
      </div>
      ${state.rollbackNote ? html`<p class="${state.rollbackNote.error ? "error" : "ok"}" data-testid="rollback-result">${state.rollbackNote.error || state.rollbackNote.ok}</p>` : ""}
    </div>`;
  });
}

async function selectRevision(n) {
  state.selected = n;
  state.detailError = null;
  state.rollbackNote = null;
  renderRevisions();
  renderDetail();
  if (state.details.has(n)) return;
  try {
    const rev = await getJson(`/v1/revisions/${n}`);
    state.details.set(n, rev);
  } catch (e) {
    if (state.selected === n) state.detailError = `revision ${n}: ${e.message}`;
  }
  renderDetail();
}

async function rollback(n) {
  if (!window.confirm(`Roll back to revision ${n}? This writes a new revision whose lane groups equal revision ${n}'s, and pushes it to every proxy.`)) return;
  state.rollbackNote = null;
  try {
    const res = await api("POST", "/v1/rollback", { revision: n });
    state.rollbackNote = res.ok
      ? { ok: `rolled back: revision ${res.data.revision} restores revision ${n} (${(res.data.groups || []).join(", ") || "no group changed"})` }
      : { error: `rollback refused: ${errorText(res)}` };
  } catch (e) {
    state.rollbackNote = { error: `rollback failed: ${e.message}` };
  }
  renderDetail();
  refreshSoon();
}

// ---------------------------------------------------------------------------------------------
// Events

document.addEventListener("click", (ev) => {
  const el = ev.target instanceof Element ? ev.target.closest("[data-action]") : null;
  if (!el || el.disabled) return;
  const action = el.getAttribute("data-action");
  if (action === "release-op") releaseOp(el.getAttribute("data-release"), el.getAttribute("data-op"));
  else if (action === "select-revision") selectRevision(Number(el.getAttribute("data-revision")));
  else if (action === "rollback") rollback(Number(el.getAttribute("data-revision")));
  else if (action === "more-revisions") { state.revisionLimit = Math.min(1000, state.revisionLimit + REVISION_PAGE); refreshSoon(); }
});

function initActor() {
  const input = document.getElementById("actor");
  let saved = "";
  try { saved = localStorage.getItem("graylane.actor") || ""; } catch { /* storage disabled */ }
  input.value = saved || "dashboard";
  input.addEventListener("change", () => {
    try { localStorage.setItem("graylane.actor", input.value.trim()); } catch { /* storage disabled */ }
  });
}

function initToken() {
  // Kept for this browser tab only (sessionStorage), never in the page's URL.
  const input = document.getElementById("token");
  try { input.value = sessionStorage.getItem("graylane.token") || ""; } catch { /* storage disabled */ }
  input.addEventListener("change", () => {
    try { sessionStorage.setItem("graylane.token", input.value.trim()); } catch { /* storage disabled */ }
    refreshSoon();
  });
}

initActor();
initToken();
poll();
