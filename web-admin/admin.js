// web-admin/admin.js - the admin dashboard's code: asks for the token (kept in
// sessionStorage, sent only as the Authorization header), polls the JSON API
// every 2 s, keeps the last minutes of each tenant's connections, rooms and
// signals/s and draws them on <canvas>, lists the chosen tenant's rooms and
// members with kick and close buttons. Everything shown goes in as text
// (textContent), never as HTML: tenant names and room names are the clients'.
'use strict';

const TOKEN_KEY = 'parley-admin-token';
const POLL_MS = 2000;
const KEEP = 150;             // points per series: 5 minutes at 2 s
const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem(TOKEN_KEY);
let selected = null;          // the tenant whose rooms are shown
let timer = null;
const history = new Map();    // tenant -> {conns: [], rooms: [], sps: [], signals, at}

function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

function showError(msg) { $('error').textContent = msg || ''; }

class Unauthorized extends Error {}

async function api(method, path) {
  const r = await fetch(path, { method, headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
  if (r.status === 401) throw new Unauthorized('the token was refused');
  let body = null;
  try { body = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) throw new Error(body && body.error ? body.error : `HTTP ${r.status}`);
  return body;
}

// ---------------------------------------------------------------- sign in

function signedIn(yes) {
  $('login').hidden = yes;
  $('dash').hidden = !yes;
  $('actions').hidden = !yes;
  if (!yes) $('status').textContent = 'not signed in';
}

function signOut(why) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(timer);
  signedIn(false);
  if (why) $('status').textContent = why;
}

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  $('token').value = '';
  sessionStorage.setItem(TOKEN_KEY, token);
  start();
});
$('logout').addEventListener('click', () => signOut());

// ---------------------------------------------------------------- charts

/** A small area chart of values on canvas c (the newest at the right edge,
 * one point per poll), scaled to its largest value; the latest value and
 * the scale's top written in its corners. */
function spark(c, values, color) {
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 150, h = c.clientHeight || 34;
  if (c.width !== w * dpr) { c.width = w * dpr; c.height = h * dpr; }
  const g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.strokeStyle = '#d8dde6';
  g.lineWidth = 1;
  g.beginPath(); g.moveTo(0, h - 0.5); g.lineTo(w, h - 0.5); g.stroke();
  if (!values.length) return;
  const max = Math.max(1, ...values) * 1.15;
  const step = w / (KEEP - 1);
  const x0 = w - (values.length - 1) * step;
  const y = (v) => h - 1 - (v / max) * (h - 12);
  g.beginPath();
  g.moveTo(x0, h - 1);
  values.forEach((v, i) => g.lineTo(x0 + i * step, y(v)));
  g.lineTo(w, h - 1);
  g.closePath();
  g.globalAlpha = 0.18;
  g.fillStyle = color;
  g.fill();
  g.globalAlpha = 1;
  g.strokeStyle = color;
  g.lineWidth = 1.5;
  g.beginPath();
  values.forEach((v, i) => (i ? g.lineTo(x0 + i * step, y(v)) : g.moveTo(x0, y(v))));
  if (values.length === 1) g.lineTo(w, y(values[0]));
  g.stroke();
  const fmt = (v) => (v >= 10 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1));
  g.font = '10px system-ui, sans-serif';
  g.fillStyle = '#667085';
  g.textAlign = 'left';
  g.fillText(`now ${fmt(values[values.length - 1])}`, 2, 9);
  g.textAlign = 'right';
  g.fillText(`max ${fmt(Math.max(...values))}`, w - 2, 9);
}

function push(arr, v) { arr.push(v); if (arr.length > KEEP) arr.shift(); }

/** Take one poll's tenants into the history; signals/s from the counter's change. */
function record(tenants, now) {
  const seen = new Set();
  for (const t of tenants) {
    seen.add(t.name);
    let h = history.get(t.name);
    if (!h) history.set(t.name, h = { conns: [], rooms: [], sps: [], signals: t.signals, at: now });
    const dt = (now - h.at) / 1000;
    const sps = dt > 0 && t.signals >= h.signals ? (t.signals - h.signals) / dt : 0;
    h.signals = t.signals;
    h.at = now;
    h.rate = sps;
    push(h.conns, t.connections);
    push(h.rooms, t.rooms);
    push(h.sps, sps);
  }
  for (const [name, h] of history) {  // a tenant gone: its series run on at zero
    if (seen.has(name)) continue;
    push(h.conns, 0); push(h.rooms, 0); push(h.sps, 0);
    if (h.conns.every((v) => v === 0)) history.delete(name);
  }
}

// ---------------------------------------------------------------- tenants

function renderTenants(tenants) {
  const body = $('tenants');
  body.textContent = '';
  const live = tenants.filter((t) => t.live || history.has(t.name));
  if (!live.length) body.append(el('tr', {}, el('td', { colspan: '8', class: 'muted', text: 'no tenant has users now' })));
  for (const t of live) {
    const h = history.get(t.name) || { conns: [], rooms: [], sps: [], rate: 0 };
    const charts = [[h.conns, '#2f6fdf'], [h.rooms, '#1e9e6a'], [h.sps, '#d9822b']].map(([v, color]) => {
      const c = el('canvas', { class: 'spark' });
      requestAnimationFrame(() => spark(c, v, color));
      return el('td', {}, c);
    });
    const row = el('tr', { class: `tenant${t.name === selected ? ' selected' : ''}`, 'data-tenant': t.name,
      onclick: () => { selected = t.name; poll(); } },
    el('td', { text: t.name }), el('td', { class: 'num', text: String(t.connections) }),
    el('td', { class: 'num', text: String(t.users) }), el('td', { class: 'num', text: String(t.rooms) }),
    el('td', { class: 'num', text: (h.rate || 0).toFixed(1) }), ...charts);
    body.append(row);
  }
}

// ---------------------------------------------------------------- rooms

async function kick(userID) {
  if (!confirm(`Kick user ${userID}? Its connection is closed.`)) return;
  try { await api('POST', `/api/v1/users/${encodeURIComponent(userID)}/kick`); showError(''); } catch (e) { showError(`kick: ${e.message}`); }
  poll();
}

async function closeRoom(tenant, roomID) {
  if (!confirm(`Close room ${roomID}? Every member is told room_closed.`)) return;
  try {
    await api('POST', `/api/v1/tenants/${encodeURIComponent(tenant)}/rooms/${encodeURIComponent(roomID)}/close`);
    showError('');
  } catch (e) { showError(`close: ${e.message}`); }
  poll();
}

async function showSession(userID, where) {
  try {
    const u = await api('GET', `/api/v1/users/${encodeURIComponent(userID)}`);
    const s = u.sessions[0];
    const since = new Date(s.connectedSince * 1000).toLocaleTimeString();
    where.textContent = `${s.framing} from ${s.remoteAddress}, ${s.state} since ${since}, in ${u.rooms.length} room(s)`;
  } catch (e) { where.textContent = e.message; }
}

function renderRooms(tenant, rooms) {
  const box = $('rooms');
  $('tenant-name').textContent = tenant || '(pick a tenant)';
  box.textContent = '';
  if (!tenant) return;
  if (!rooms.length) { box.append(el('p', { class: 'muted', text: 'no rooms' })); return; }
  for (const r of rooms) {
    const members = el('ul', { class: 'members' });
    for (const id of r.members) {
      const session = el('span', { class: 'session' });
      members.append(el('li', { 'data-user': id },
        el('code', { text: id, title: 'show the session', onclick: () => showSession(id, session) }),
        id === r.owner ? el('span', { class: 'badge', text: 'owner' }) : null,
        el('button', { class: 'danger kick', text: 'Kick', 'data-user': id, onclick: () => kick(id) }),
        session));
    }
    box.append(el('div', { class: 'room', 'data-room': r.roomID },
      el('div', { class: 'room-head' },
        el('span', { class: 'id', text: r.roomID }),
        el('strong', { text: r.name || '(no name)' }),
        el('span', { class: 'muted', text: `type ${r.type}, ${r.curUsers}/${r.maxUsers} users${r.hasPassword ? ', password' : ''}` }),
        r.meta !== null ? el('span', { class: 'muted', text: `meta ${JSON.stringify(r.meta).slice(0, 120)}` }) : null,
        el('button', { class: 'danger close', text: 'Close room', onclick: () => closeRoom(tenant, r.roomID) })),
      members));
  }
}

// ---------------------------------------------------------------- polling

async function poll() {
  clearTimeout(timer);
  if (!token) return;
  try {
    const [st, ts] = await Promise.all([api('GET', '/api/v1/status'), api('GET', '/api/v1/tenants')]);
    record(ts.tenants, Date.now());
    $('status').textContent = `${st.node ? `node ${st.node}, ` : ''}policy ${st.policyVersion}, ${st.users} users, ` +
      `${st.rooms} rooms${st.draining ? ', DRAINING' : ''}`;
    $('scope').textContent = st.scope === 'node' ? '(this node only)' : '';
    renderTenants(ts.tenants);
    if (selected) renderRooms(selected, (await api('GET', `/api/v1/tenants/${encodeURIComponent(selected)}/rooms`)).rooms);
    else renderRooms(null, []);
    signedIn(true);
  } catch (e) {
    if (e instanceof Unauthorized) { signOut('the token was refused: sign in again'); return; }
    showError(e.message);
  }
  timer = setTimeout(poll, POLL_MS);
}

function start() {
  if (!token) { signedIn(false); return; }
  poll();
}

$('reload').addEventListener('click', async () => {
  try {
    const r = await api('POST', '/api/v1/reload');
    showError('');
    $('status').textContent = `policies reloaded: version ${r.version}`;
  } catch (e) { showError(`reload: ${e.message}`); }
});

$('drain').addEventListener('click', async () => {
  if (!confirm('Drain this node? It stops accepting, asks its clients to reconnect elsewhere, then exits.')) return;
  try { await api('POST', '/api/v1/drain'); } catch (e) { showError(`drain: ${e.message}`); }
});

start();
