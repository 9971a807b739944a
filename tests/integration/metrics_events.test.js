// /metrics counts what the event layer did: events handled, SIGNALs relayed
// and their signal bytes, ERRORs sent by code, rate-limited events. Checked as
// differences around a scenario (other files share nothing with this one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, assertAliveThenStop, httpGet, connectUsers, roomWith, ERR, singleNodeOnly } from './helpers.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { if (server) await assertAliveThenStop(server); });

const T = { timeout: 20000 };

async function counters() {
  const r = await httpGet(server.port, '/metrics');
  assert.equal(r.status, 200);
  const get = (name) => {
    const m = new RegExp(`^${name.replace(/[{}"]/g, (ch) => `\\${ch}`)} (\\d+)\\s*$`, 'm').exec(r.body);
    assert.ok(m, `${name} missing from /metrics:\n${r.body}`);
    return Number(m[1]);
  };
  return {
    events: get('parley_events_total'), signals: get('parley_signals_relayed_total'),
    bytes: get('parley_signal_bytes_total'), limited: get('parley_events_rate_limited_total'),
    e0: get('parley_errors_total{code="0"}'), e3: get('parley_errors_total{code="3"}'),
  };
}

test('Metrics: events, relayed signals and their bytes, ERRORs by code are counted', { ...T, ...singleNodeOnly("each node counts its own clients' events") }, async (t) => {
  const [a, b] = await connectUsers(server, t, 2);
  const roomID = await roomWith([a, b]);
  const before0 = await counters();
  const signal = { sdp: 'v=0 1234' };
  a.send('SIGNAL', { target: b.id, room: roomID, signal });
  await b.next('SIGNAL');
  await a.fails('NO_SUCH_EVENT', {}, ERR.UNSPECIFIED);
  await a.fails('JOIN_ROOM', { room: 'AAAAAAAAAAAAAAAAAAAAAA', password: '' }, ERR.NO_SUCH_ROOM);
  const after0 = await counters();
  assert.equal(after0.signals - before0.signals, 1);
  assert.equal(after0.bytes - before0.bytes, JSON.stringify(signal).length);
  assert.equal(after0.e0 - before0.e0, 1);
  assert.equal(after0.e3 - before0.e3, 1);
  assert.equal(after0.events - before0.events, 3);
  assert.equal(after0.limited, before0.limited);
});
