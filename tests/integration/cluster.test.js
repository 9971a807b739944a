// Cluster mode (--redis, --node-id): every test starts its own redis-server and
// nodes (helpers.js startCluster), puts its clients on chosen nodes
// (connectUser(cluster.node(i), t)) and reads Redis itself (redisCommand) to
// check that what the clients were told is what the cluster holds:
//   seat race         30 joins at once over 3 nodes for 9 free seats
//   storm             join/leave churn over 3 nodes and 4 rooms, then the
//                     owners' notifications and Redis's keys add up
//   owner hand-over   the owner leaves while others join on other nodes
//   signals           cross-node SIGNALs once each and in order; same-node
//                     SIGNALs publish nothing
//   node death        kill -9 of a node: its users leave within 5 s; a node
//                     started again at once under the same node ID makes
//                     the dead process's users leave
//   Redis death       what still works without Redis, and the way back; a
//                     user refused for want of Redis can go on and try again
// It runs under every framing (PARLEY_FRAMING), but not in the cluster pass
// (PARLEY_CLUSTER): it makes its own clusters, that pass would only repeat it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  startCluster, connectUser, createRoom, joinRoom, roomWith, assertError, httpGet, ERR, sleep, REPO,
  isSio, FRAMING, withTimeout, roundRobinProxy,
} from './helpers.js';
import WebSocket from 'ws';
import http from 'node:http';
import { io } from 'socket.io-client';
import { redisCommand, startServer as startLibServer } from '../lib/server.js';

const SKIP = process.env.PARLEY_CLUSTER && process.env.PARLEY_CLUSTER !== '0'
  ? `cluster.test.js starts its own clusters; under PARLEY_CLUSTER=${process.env.PARLEY_CLUSTER} it would only repeat itself`
  : null;
if (SKIP) console.log(`# skipped: ${SKIP}`);

// Timing assertions (a death noticed within 5 s, an ERROR within 1.5 s, a room
// made again within 5 s) run in the plain build; under the sanitizers the
// same scenarios run with waits of 30 s and no timing asserted.
const SANITIZED = !!process.env.PARLEY_SANITIZED;
const WITHIN = (ms) => (SANITIZED ? 30_000 : ms);

const T = { timeout: 90_000, ...(SKIP ? { skip: SKIP } : {}) };
const FAST = { rate: 100_000, burst: 100_000 };  // no per-connection rate limit in the way of bulk traffic

/** A cluster stopped when test `t` ends (a node killed by the test is already gone: its stop() just reports it). */
async function cluster(t, opts = {}) {
  const c = await startCluster({ nodes: 3, resumeGrace: 0, ...opts });
  t.after(() => c.stop());
  return c;
}

/** One node's /metrics as {name: number} (the lines without labels). */
async function nodeMetrics(node) {
  const r = await httpGet(node.port, '/metrics');
  assert.equal(r.status, 200, `/metrics of port ${node.port}: status ${r.status}`);
  const out = {};
  for (const line of r.body.split('\n')) {
    const m = /^(parley_\w+) (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Poll fn() until it returns a truthy value, up to `ms`; resolves that value or null. */
async function until(fn, ms, every = 25) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) return null;
    await sleep(every);
  }
}

const members = (port, room) => redisCommand(port, 'ZRANGE', `parley:members:${room}`, 0, -1);
const nrooms = async (port) => Number(await redisCommand(port, 'GET', 'parley:nrooms') || 0);

/** Users 0..n-1, user i on node (i + first) mod nodes. */
function connectSpread(c, t, n, first = 0) {
  return Promise.all(Array.from({ length: n }, (_, i) => connectUser(c.node((i + first) % c.nodes.length), t)));
}

test('Seat race: 30 users over 3 nodes JOIN a 10-seat room at once: exactly 9 in, 21 LIMIT_REACHED; the owner told of 9; Redis holds 10', T, async (t) => {
  const c = await cluster(t);
  const owner = await connectUser(c.node(0), t);
  const { roomID } = await createRoom(owner, { maxUsers: 10 });
  const users = await connectSpread(c, t, 30);
  const t0 = Date.now();
  const replies = await Promise.all(users.map((u) => u.request('JOIN_ROOM', { room: roomID, password: 'pw' }, { timeout: 10_000 })));
  const took = Date.now() - t0;
  const won = [];
  const lost = [];
  const other = [];
  replies.forEach((r, i) => {
    if (r.event === 'JOIN_ROOM') won.push({ u: users[i], p: r.payload, node: i % 3 });
    else if (r.event === 'ERROR' && r.payload.error === ERR.LIMIT_REACHED) lost.push(i);
    else other.push(`user ${i} (node ${i % 3 + 1}): ${r.raw}`);
  });
  const cur = won.map((w) => w.p.curUsers).sort((a, b) => a - b);
  t.diagnostic(`30 JOIN_ROOM answered in ${took} ms: ${won.length} in, ${lost.length} LIMIT_REACHED, ${other.length} other`);
  t.diagnostic(`winners per node: ${[0, 1, 2].map((n) => `n${n + 1}=${won.filter((w) => w.node === n).length}`).join(' ')}; curUsers in their replies: ${cur.join(',')}`);
  assert.deepEqual(other, [], 'every JOIN_ROOM either succeeds or gets LIMIT_REACHED');
  assert.equal(won.length, 9, 'exactly the 9 free seats are taken');
  assert.equal(lost.length, 21);
  for (const i of lost) assertError(replies[i].payload, { error: ERR.LIMIT_REACHED, event: 'JOIN_ROOM' });
  for (const w of won) assert.ok(w.p.curUsers <= 10, `curUsers ${w.p.curUsers} > maxUsers 10: ${JSON.stringify(w.p)}`);
  assert.equal(Math.max(...cur), 10, 'the last one in sees a full room');

  const told = [];
  for (let i = 0; i < 9; i++) told.push(await owner.next('JOIN_ROOM', { timeout: 5000 }));
  await owner.expectNothing(300);
  for (const n of told) assert.equal(n.from.roomID, roomID);
  assert.deepEqual(told.map((n) => n.from.userID).sort(), won.map((w) => w.u.id).sort(),
    "the owner's JOIN_ROOM notifications name exactly the 9 who got in");
  assert.equal(await redisCommand(c.redis.port, 'ZCARD', `parley:members:${roomID}`), 10, 'Redis: 10 members');
});

test('Storm: 24 users join/leave 4 rooms (maxUsers 5, owners stay) over 3 nodes for 2 s; afterwards owners\' notifications and Redis add up, and no room key is left', T, async (t) => {
  const c = await cluster(t, { limits: FAST });
  const port = c.redis.port;
  const owners = await connectSpread(c, t, 4);
  const rooms = [];
  for (const o of owners) rooms.push((await createRoom(o, { maxUsers: 5 })).roomID);
  assert.equal(await nrooms(port), 4);
  const users = await connectSpread(c, t, 24, 1);
  // joins[r] : Map userID -> successful joins into rooms[r]
  const joins = rooms.map(() => new Map());
  const outcome = { joined: 0, full: 0, noRoom: 0 };
  const unexpected = [];
  const stillIn = [];
  const deadline = Date.now() + 2000;
  await Promise.all(users.map(async (u, ui) => {
    while (Date.now() < deadline) {
      const r = Math.floor(Math.random() * rooms.length);
      const rep = await u.request('JOIN_ROOM', { room: rooms[r], password: 'pw' }, { timeout: 5000 });
      if (rep.event === 'JOIN_ROOM') {
        outcome.joined++;
        joins[r].set(u.id, (joins[r].get(u.id) || 0) + 1);
        await sleep(Math.random() * 20);
        if (Date.now() >= deadline && Math.random() < 0.5) { stillIn.push([u, r]); break; }
        u.send('DISCONNECT', rooms[r]);
      } else if (rep.event === 'ERROR' && rep.payload.error === ERR.LIMIT_REACHED) {
        outcome.full++;
        await sleep(Math.random() * 5);
      } else if (rep.event === 'ERROR' && rep.payload.error === ERR.NO_SUCH_ROOM) {
        outcome.noRoom++;
      } else {
        unexpected.push(`user ${ui}: ${rep.raw}`);
        await sleep(10);
      }
    }
  }));
  t.diagnostic(`storm: ${outcome.joined} joins, ${outcome.full} LIMIT_REACHED, ${outcome.noRoom} NO_SUCH_ROOM, ${unexpected.length} other; ${stillIn.length} users still in a room at the end`);
  assert.deepEqual(unexpected.slice(0, 10), [], 'JOIN_ROOM only succeeds or gets LIMIT_REACHED / NO_SUCH_ROOM');
  assert.ok(outcome.joined > 0 && outcome.full > 0, 'the storm had both joins and full rooms');

  // Everyone but the owners leaves; a GET_ID after each DISCONNECT answers once it is through.
  for (const [u, r] of stillIn) u.send('DISCONNECT', rooms[r]);
  await Promise.all(users.map((u) => u.ok('GET_ID', {}, { timeout: 5000 })));
  for (let r = 0; r < rooms.length; r++) {
    const got = await until(async () => {
      const m = await members(port, rooms[r]);
      return m.length === 1 && m[0] === owners[r].id ? m : null;
    }, 3000);
    assert.ok(got, `room ${r}: Redis members are not just the owner: ${JSON.stringify(await members(port, rooms[r]))}`);
  }

  // Each owner heard every join and every leave of its room, in order per user.
  for (let r = 0; r < rooms.length; r++) {
    const o = owners[r];
    const expected = [...joins[r].values()].reduce((a, b) => a + b, 0);
    const mine = (m) => (m.event === 'JOIN_ROOM' && m.payload?.from?.roomID === rooms[r])
      || (m.event === 'DISCONNECT' && m.payload?.roomID === rooms[r]);
    const count = () => o.buf.filter(mine).length;
    await until(() => count() >= 2 * expected, 5000);
    await sleep(300);  // and nothing more
    const seen = o.buf.filter(mine);
    o.buf = o.buf.filter((m) => !mine(m));
    const nj = seen.filter((m) => m.event === 'JOIN_ROOM').length;
    const nd = seen.length - nj;
    t.diagnostic(`room ${r} (owner on node ${r % 3 + 1}): ${expected} successful joins; owner saw ${nj} JOIN_ROOM, ${nd} DISCONNECT`);
    assert.equal(nj, expected, `room ${r}: JOIN_ROOM notifications vs successful joins`);
    assert.equal(nj - nd, 0, `room ${r}: JOIN_ROOM seen minus DISCONNECT seen`);
    const perUser = new Map();
    for (const m of seen) {
      const id = m.event === 'JOIN_ROOM' ? m.payload.from.userID : m.payload.userID;
      perUser.set(id, (perUser.get(id) || '') + (m.event === 'JOIN_ROOM' ? 'J' : 'D'));
    }
    for (const [id, seq] of perUser) {
      assert.match(seq, /^(JD)+$/, `room ${r}: user ${id}'s notifications to the owner are not join, leave, join, leave…: ${seq}`);
      assert.equal(seq.length / 2, joins[r].get(id), `room ${r}: user ${id}'s joins`);
    }
    assert.deepEqual(o.buf.map((m) => m.raw), [], `owner ${r}: nothing else`);
  }
  assert.equal(await nrooms(port), 4, 'parley:nrooms with the owners still in');

  // The owners leave: every room is deleted, no key is left behind.
  for (let r = 0; r < rooms.length; r++) owners[r].send('DISCONNECT', rooms[r]);
  await Promise.all(owners.map((o) => o.ok('GET_ID', {}, { timeout: 5000 })));
  await until(async () => (await nrooms(port)) === 0, 3000);
  assert.equal(await nrooms(port), 0, 'parley:nrooms once every room is empty');
  for (const pat of ['parley:room:*', 'parley:members:*', 'parley:user:*', 'parley:urooms:*']) {
    assert.deepEqual(await redisCommand(port, 'KEYS', pat), [], `Redis keys ${pat} left`);
  }
});

test('Owner hand-over: A (node 1) leaves while C (node 3) and D (node 1) join; B (node 2) is the one owner everybody agrees on (5 rounds)', T, async (t) => {
  const c = await cluster(t);
  const port = c.redis.port;
  for (let round = 0; round < 5; round++) {
    const a = await connectUser(c.node(0), t);
    const b = await connectUser(c.node(1), t);
    const cc = await connectUser(c.node(2), t);
    const d = await connectUser(c.node(0), t);
    const e = await connectUser(c.node(1), t);
    const roomID = await roomWith([a, b]);
    a.send('DISCONNECT', roomID);
    const [jc, jd] = await Promise.all([joinRoom(cc, roomID), joinRoom(d, roomID), a.ok('GET_ID', {})]);
    assert.deepEqual(await b.next('DISCONNECT', { timeout: 5000 }), { userID: a.id, roomID });
    const order = await members(port, roomID);
    t.diagnostic(`round ${round}: C's reply curUsers ${jc.curUsers}, D's ${jd.curUsers}; Redis members in join order: ${order.map((id) => ({ [a.id]: 'A', [b.id]: 'B', [cc.id]: 'C', [d.id]: 'D' })[id]).join(',')}`);
    assert.equal(order[0], b.id, 'B is the longest-present member in Redis');
    assert.deepEqual([...order].sort(), [b.id, cc.id, d.id].sort());
    // Who may UPDATE_ROOM: the others first (refused), then B.
    const upd = (u, name) => u.request('UPDATE_ROOM', { room: roomID, maxUsers: 10, name, password: 'pw' }, { timeout: 5000 });
    const rc = await upd(cc, 'by C');
    const rd = await upd(d, 'by D');
    const rb = await upd(b, 'by B');
    const verdict = { B: rb, C: rc, D: rd };
    const okers = Object.entries(verdict).filter(([, r]) => r.event === 'UPDATE_ROOM').map(([k]) => k);
    assert.deepEqual(okers, ['B'], `exactly B may UPDATE_ROOM; answers: ${Object.entries(verdict).map(([k, r]) => `${k}: ${r.raw}`).join(' | ')}`);
    for (const r of [rc, rd]) assertError(r.payload, { error: ERR.ROOM_ERROR, event: 'UPDATE_ROOM' });
    assert.equal(rb.payload.name, 'by B');
    const je = await joinRoom(e, roomID);
    const zcard = await redisCommand(port, 'ZCARD', `parley:members:${roomID}`);
    assert.equal(je.curUsers, zcard, "a fresh joiner's curUsers is Redis's member count");
    assert.equal(je.curUsers, 4);
    assert.deepEqual(je.spec, await members(port, roomID).then((m) => m.filter((id) => id !== e.id)),
      "the fresh joiner's spec is the other members in Redis's join order");
    for (const u of [a, b, cc, d, e]) await u.close();
  }
});

test('Cross-node SIGNAL: 3 pairs split over nodes 1 and 2, 1000 each way per pair, each once and in order; a same-node pair publishes nothing', T, async (t) => {
  const c = await cluster(t, { limits: FAST });
  const [n1, n2, n3] = c.nodes;
  const N = 1000;
  const pairs = [];
  for (let i = 0; i < 3; i++) {
    const x = await connectUser(n1, t);
    const y = await connectUser(n2, t);
    pairs.push({ x, y, roomID: await roomWith([x, y]) });
  }
  const before1 = await nodeMetrics(n1);
  const before2 = await nodeMetrics(n2);
  const t0 = Date.now();
  const receive = async (to, from, roomID) => {
    for (let i = 0; i < N; i++) {
      const s = await to.next('SIGNAL', { timeout: 10_000 });
      assert.deepEqual(s, { source: from.id, target: to.id, room: roomID, signal: { seq: i } },
        `signal ${i} from ${from.id} to ${to.id}`);
    }
  };
  const recv = [];
  for (const { x, y, roomID } of pairs) {
    recv.push(receive(y, x, roomID), receive(x, y, roomID));
    for (let i = 0; i < N; i++) {
      x.send('SIGNAL', { source: x.id, target: y.id, room: roomID, signal: { seq: i } });
      y.send('SIGNAL', { source: y.id, target: x.id, room: roomID, signal: { seq: i } });
    }
  }
  await Promise.all(recv);
  const took = Date.now() - t0;
  await Promise.all(pairs.flatMap(({ x, y }) => [x.expectNothing(300), y.expectNothing(0)]));  // no duplicates
  const after1 = await nodeMetrics(n1);
  const after2 = await nodeMetrics(n2);
  const d = (a, b, k) => a[k] - b[k];
  t.diagnostic(`${6 * N} cross-node SIGNALs delivered in ${took} ms (${Math.round(6 * N / (took / 1000))}/s)`);
  t.diagnostic(`node 1: forwarded +${d(after1, before1, 'parley_cluster_signals_forwarded_total')}, received +${d(after1, before1, 'parley_cluster_signals_received_total')}, publishes +${d(after1, before1, 'parley_cluster_publishes_total')}; `
    + `node 2: forwarded +${d(after2, before2, 'parley_cluster_signals_forwarded_total')}, received +${d(after2, before2, 'parley_cluster_signals_received_total')}, publishes +${d(after2, before2, 'parley_cluster_publishes_total')}`);
  for (const [a, b] of [[after1, before1], [after2, before2]]) {
    assert.equal(d(a, b, 'parley_cluster_signals_forwarded_total'), 3 * N);
    assert.equal(d(a, b, 'parley_cluster_signals_received_total'), 3 * N);
  }

  // Same node (node 3): no PUBLISH for a local SIGNAL.
  const p = await connectUser(n3, t);
  const q = await connectUser(n3, t);
  const roomID = await roomWith([p, q]);
  const before3 = await nodeMetrics(n3);
  const M = 200;
  for (let i = 0; i < M; i++) {
    p.send('SIGNAL', { source: p.id, target: q.id, room: roomID, signal: { seq: i } });
    q.send('SIGNAL', { source: q.id, target: p.id, room: roomID, signal: { seq: i } });
  }
  for (let i = 0; i < M; i++) assert.deepEqual((await q.next('SIGNAL', { timeout: 5000 })).signal, { seq: i });
  for (let i = 0; i < M; i++) assert.deepEqual((await p.next('SIGNAL', { timeout: 5000 })).signal, { seq: i });
  const after3 = await nodeMetrics(n3);
  const pub = d(after3, before3, 'parley_cluster_publishes_total');
  t.diagnostic(`node 3, ${2 * M} same-node SIGNALs: publishes +${pub}, forwarded +${d(after3, before3, 'parley_cluster_signals_forwarded_total')}`);
  assert.ok(pub < 10, `same-node SIGNALs published: ${pub} PUBLISHes for ${2 * M} signals`);
  assert.equal(d(after3, before3, 'parley_cluster_signals_forwarded_total'), 0);
});

test('Node death and restart under the same node ID: kill -9 of node 1, started again at once (before its heartbeat ran out, so nobody reaps it): the users of the dead process leave (the others get DISCONNECT, Redis forgets them), the new process serves', T, async (t) => {
  const c = await cluster(t, { nodes: 2 });
  const [a, b] = [await connectUser(c.node(0), t), await connectUser(c.node(1), t)];
  const roomID = await roomWith([b, a]);
  c.node(0).kill('SIGKILL');
  assert.equal((await c.node(0).exited).signal, 'SIGKILL');
  const n1 = await startLibServer({ single: true, logLevel: 'info',
    args: ['--redis', c.redis.url, '--node-id', 'n1', '--cluster-heartbeat-ms', '500'] });
  t.after(() => n1.stop().catch(() => {}));
  const t0 = Date.now();
  assert.deepEqual(await b.next('DISCONNECT', { timeout: WITHIN(5000) }), { userID: a.id, roomID });
  t.diagnostic(`B told of A's leave ${Date.now() - t0} ms after node 1 started again`);
  assert.match(n1.stderr, /1 users Redis said node n1 holds were not here/);
  assert.deepEqual(await members(c.redis.port, roomID), [b.id]);
  assert.deepEqual(await redisCommand(c.redis.port, 'SMEMBERS', 'parley:nusers:n1'), []);
  // the new process serves: a user of it joins B's room
  const d = await connectUser(n1, t);
  await joinRoom(d, roomID);
  assert.deepEqual(await b.next('JOIN_ROOM'), { from: { userID: d.id, roomID } });
});

test('Node death: kill -9 of the owner\'s node; the others get DISCONNECT within 5 s, B owns the room, a newcomer counts 3', T, async (t) => {
  const c = await cluster(t);  // --cluster-heartbeat-ms 500 (the harness's default): TTL 1.5 s
  const [a, b, cc] = [await connectUser(c.node(0), t), await connectUser(c.node(1), t), await connectUser(c.node(2), t)];
  const roomID = await roomWith([a, b, cc]);
  const reapedBefore = (await nodeMetrics(c.node(1))).parley_cluster_nodes_reaped_total
    + (await nodeMetrics(c.node(2))).parley_cluster_nodes_reaped_total;
  c.node(0).kill('SIGKILL');
  const t0 = Date.now();
  const [gb, gc] = await Promise.all([b, cc].map(async (u) => {
    const n = await u.next('DISCONNECT', { timeout: WITHIN(5000) });
    return { n, ms: Date.now() - t0 };
  }));
  t.diagnostic(`after kill -9 of node 1: B told in ${gb.ms} ms, C in ${gc.ms} ms`);
  assert.deepEqual(gb.n, { userID: a.id, roomID });
  assert.deepEqual(gc.n, { userID: a.id, roomID });
  if (!SANITIZED) assert.ok(gb.ms < 5000 && gc.ms < 5000);
  assert.equal((await c.node(0).exited).signal, 'SIGKILL');

  await cc.fails('UPDATE_ROOM', { room: roomID, maxUsers: 10, name: 'by C', password: 'pw' }, ERR.ROOM_ERROR);
  const u = await b.ok('UPDATE_ROOM', { room: roomID, maxUsers: 10, name: 'by B', password: 'pw' });
  assert.equal(u.name, 'by B');
  const e = await connectUser(c.node(1), t);
  const j = await joinRoom(e, roomID);
  assert.equal(j.curUsers, 3, 'B, C and the newcomer');
  assert.deepEqual(j.spec, [b.id, cc.id]);
  assert.deepEqual(await members(c.redis.port, roomID), [b.id, cc.id, e.id]);
  // parley_cluster_nodes is what the node's last heartbeat saw: the node that
  // did not reap may say 3 for up to one more period (500 ms).
  let m2;
  let m3;
  const two = await until(async () => {
    [m2, m3] = [await nodeMetrics(c.node(1)), await nodeMetrics(c.node(2))];
    return m2.parley_cluster_nodes === 2 && m3.parley_cluster_nodes === 2;
  }, 2000);
  const reaped = m2.parley_cluster_nodes_reaped_total + m3.parley_cluster_nodes_reaped_total - reapedBefore;
  t.diagnostic(`nodes 2 and 3: parley_cluster_nodes ${m2.parley_cluster_nodes}/${m3.parley_cluster_nodes} ${Date.now() - t0} ms after the kill, reaped +${reaped} in all`);
  assert.ok(two, `parley_cluster_nodes on nodes 2/3: ${m2.parley_cluster_nodes}/${m3.parley_cluster_nodes}, 2 expected on both`);
  assert.equal(reaped, 1, 'node 1 is reaped once, by one of the live nodes');
});

test('Redis death: same-node SIGNALs flow, cluster requests get ROOM_ERROR fast, new connections are accepted; after a restart (empty) both nodes are back and the rooms are made again from what they hold', T, async (t) => {
  const c = await cluster(t, { nodes: 2 });
  const [n1, n2] = c.nodes;
  const a = await connectUser(n1, t);
  const b = await connectUser(n1, t);
  const cc = await connectUser(n2, t);
  const roomID = await roomWith([a, b]);
  await c.redis.kill('SIGKILL');

  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: { while: 'redis is down' } });
  assert.deepEqual(await b.next('SIGNAL', { timeout: 3000 }), { source: a.id, target: b.id, room: roomID, signal: { while: 'redis is down' } });

  let t0 = Date.now();
  const cr = await a.request('CREATE_ROOM', { maxUsers: 10, name: 'no redis', password: 'pw', type: 0 }, { timeout: 5000 });
  const createMs = Date.now() - t0;
  t0 = Date.now();
  const jr = await cc.request('JOIN_ROOM', { room: roomID, password: 'pw' }, { timeout: 5000 });
  const joinMs = Date.now() - t0;
  t.diagnostic(`Redis down: CREATE_ROOM on node 1 answered in ${createMs} ms (${cr.raw}); JOIN_ROOM on node 2 in ${joinMs} ms`);
  assert.equal(cr.event, 'ERROR', `CREATE_ROOM without Redis: ${cr.raw}`);
  assertError(cr.payload, { error: ERR.ROOM_ERROR, event: 'CREATE_ROOM' });
  assert.match(cr.payload.msg, /the cluster is unavailable: try again/);
  if (!SANITIZED) assert.ok(createMs < 1500, `CREATE_ROOM's ERROR took ${createMs} ms`);
  assert.equal(jr.event, 'ERROR', `JOIN_ROOM without Redis: ${jr.raw}`);
  assertError(jr.payload, { error: ERR.ROOM_ERROR, event: 'JOIN_ROOM' });
  if (!SANITIZED) assert.ok(joinMs < 1500, `JOIN_ROOM's ERROR took ${joinMs} ms`);

  const late = await connectUser(n2, t);  // connects and answers GET_ID
  assert.ok(late.id);
  const down = await until(async () => (await nodeMetrics(n1)).parley_cluster_up === 0 && (await nodeMetrics(n2)).parley_cluster_up === 0, 3000);
  assert.ok(down, 'both nodes report parley_cluster_up 0 while Redis is down');

  await c.redis.restart();
  t0 = Date.now();
  const up = await until(async () => (await nodeMetrics(n1)).parley_cluster_up === 1 && (await nodeMetrics(n2)).parley_cluster_up === 1, 10_000, 50);
  const upMs = Date.now() - t0;
  t.diagnostic(`Redis restarted (empty): both nodes report parley_cluster_up 1 after ${upMs} ms`);
  assert.ok(up, `parley_cluster_up is not 1 on both nodes 10 s after the restart: n1 ${(await nodeMetrics(n1)).parley_cluster_up}, n2 ${(await nodeMetrics(n2)).parley_cluster_up}`);

  // Users that asked nothing of the cluster while it was away (A and C did: the next test is about them).
  const e = await connectUser(n2, t);
  const fresh = await createRoom(e, { name: 'after restart' });
  const d = await connectUser(n1, t);
  const jd = await joinRoom(d, fresh.roomID);
  assert.equal(jd.curUsers, 2);
  assert.deepEqual(await e.next('JOIN_ROOM', { timeout: 3000 }), { from: { userID: d.id, roomID: fresh.roomID } });

  // The room A and B were in before Redis lost everything is made again by their node (within 5 s of the restart),
  // with its settings, members and owner: a newcomer on node 2 joins it with the password and sees both.
  const probe = await connectUser(n2, t);
  let old;
  const rebuilt = await until(async () => {
    old = await probe.request('JOIN_ROOM', { room: roomID, password: 'pw' }, { timeout: 3000 });
    return old.event === 'JOIN_ROOM';
  }, WITHIN(5000), 100);
  const rebuildMs = Date.now() - t0;
  t.diagnostic(`A's room from before the restart joined from node 2 ${rebuildMs} ms after the restart: ${old.raw}`);
  assert.ok(rebuilt, `the room from before the restart is not joinable 5 s after it: ${old.raw}`);
  assert.equal(old.payload.curUsers, 3);
  assert.deepEqual(await a.next('JOIN_ROOM', { timeout: 3000 }), { from: { userID: probe.id, roomID } });
  assert.deepEqual(await b.next('JOIN_ROOM', { timeout: 3000 }), { from: { userID: probe.id, roomID } });
  // the owner is still A: A may update the room, B may not
  await b.fails('UPDATE_ROOM', { room: roomID, maxUsers: 10, name: 'x', password: 'pw' }, ERR.ROOM_ERROR);
  await a.ok('UPDATE_ROOM', { room: roomID, maxUsers: 10, name: 'x', password: 'pw' });
  assert.equal(Number(await redisCommand(c.redis.port, 'ZCARD', `parley:members:${roomID}`)), 3);
});

test('Redis death: a user told "the cluster is unavailable: try again" can go on (GET_ID, same-node SIGNAL) and try again once Redis is back', T, async (t) => {
  const c = await cluster(t, { nodes: 2 });
  const [n1, n2] = c.nodes;
  const a = await connectUser(n1, t);  // owner of the room: UPDATE_ROOM
  const b = await connectUser(n1, t);  // member: DISCONNECT
  const k = await connectUser(n1, t);  // CREATE_ROOM
  const cc = await connectUser(n2, t); // JOIN_ROOM (node 2 holds no view of the room: a fetch)
  const roomID = await roomWith([a, b]);
  await c.redis.kill('SIGKILL');

  const asks = [
    ['A', a, 'UPDATE_ROOM', { room: roomID, maxUsers: 10, name: 'x', password: 'pw' }],
    ['B', b, 'DISCONNECT', roomID],
    ['K', k, 'CREATE_ROOM', { maxUsers: 10, name: 'x', password: 'pw', type: 0 }],
    ['C', cc, 'JOIN_ROOM', { room: roomID, password: 'pw' }],
  ];
  const problems = [];
  for (const [who, u, ev, payload] of asks) {
    let r;
    if (ev === 'DISCONNECT') {  // no requestId: its ERROR has requestID null
      u.send(ev, payload);
      r = { payload: await u.next('ERROR', { timeout: 1500 }).catch((e) => ({ timeout: e.message })) };
      r.event = r.payload.timeout ? 'none' : 'ERROR';
    } else {
      r = await u.request(ev, payload, { timeout: 1500 }).catch((e) => ({ event: 'none', payload: { timeout: e.message } }));
    }
    if (r.event !== 'ERROR' || r.payload.error !== ERR.ROOM_ERROR || !/cluster is unavailable/.test(r.payload.msg)) {
      problems.push(`${who} ${ev} while Redis is down: expected ERROR 4 "the cluster is unavailable: try again", got ${JSON.stringify(r.payload)}`);
    }
  }
  const getId = async (who, u) => {
    const t0 = Date.now();
    const r = await u.request('GET_ID', {}, { timeout: 2000 }).catch(() => null);
    if (!r) problems.push(`${who}: GET_ID after its refused ${asks.find((x) => x[0] === who)[2]} got no answer within 2 s`);
    return r && Date.now() - t0;
  };
  const ms = await Promise.all(asks.map(([who, u]) => getId(who, u)));
  t.diagnostic(`Redis down: GET_ID answered after the refused request: ${asks.map(([who, , ev], i) => `${who} (${ev}) ${ms[i] == null ? 'never' : `${ms[i]} ms`}`).join(', ')}`);
  a.send('SIGNAL', { source: a.id, target: b.id, room: roomID, signal: 'a->b' });
  b.send('SIGNAL', { source: b.id, target: a.id, room: roomID, signal: 'b->a' });
  for (const [to, from, sig] of [[b, a, 'a->b'], [a, b, 'b->a']]) {
    const got = await to.next('SIGNAL', { timeout: 2000 }).catch(() => null);
    if (!got || got.signal !== sig) problems.push(`SIGNAL ${sig} (same node) after ${from === a ? "A's" : "B's"} refused request: ${got ? JSON.stringify(got) : 'not delivered within 2 s'}`);
  }

  await c.redis.restart();
  const up = await until(async () => (await nodeMetrics(n1)).parley_cluster_up === 1 && (await nodeMetrics(n2)).parley_cluster_up === 1, 10_000, 50);
  assert.ok(up, 'parley_cluster_up 1 on both nodes within 10 s of the restart');
  for (const [who, u] of [['K', k], ['C', cc]]) {
    const r = await u.request('CREATE_ROOM', { maxUsers: 10, name: `again by ${who}`, password: 'pw', type: 0 }, { timeout: 3000 }).catch(() => null);
    if (!r || r.event !== 'CREATE_ROOM') problems.push(`${who}: CREATE_ROOM once Redis is back: ${r ? r.raw : 'no answer within 3 s'}`);
  }
  assert.deepEqual(problems, [], 'what a refused user could not do afterwards');
});

test('Concurrent joins over 3 nodes: every member learns of every other exactly once (in its JOIN_ROOM spec or by a JOIN_ROOM notification), up to 20 rounds', T, async (t) => {
  const c = await cluster(t);
  const port = c.redis.port;
  const name = (order, id) => (order.indexOf(id) < 0 ? id : `#${order.indexOf(id)}`);
  let rounds = 0;
  for (; rounds < 20; rounds++) {
    const owner = await connectUser(c.node(0), t);
    const { roomID } = await createRoom(owner, { maxUsers: 10 });  // type 0: the spec is the other members
    const users = await connectSpread(c, t, 30);
    const replies = await Promise.all(users.map((u) => u.request('JOIN_ROOM', { room: roomID, password: 'pw' }, { timeout: 10_000 })));
    const order = await members(port, roomID);
    assert.equal(order.length, 10);
    const winners = [owner, ...users.filter((u, i) => replies[i].event === 'JOIN_ROOM')];
    const nodeOf = new Map([[owner, 1], ...users.map((u, i) => [u, (i % 3) + 1])]);
    const spec = new Map([[owner.id, []], ...users.map((u, i) => [u.id, replies[i].payload.spec]).filter((x, i) => replies[i].event === 'JOIN_ROOM')]);
    // every member is told of each later joiner: 10 - 1 - position notifications
    await until(() => winners.every((w) => w.buf.filter((m) => m.event === 'JOIN_ROOM').length >= order.length - 1 - order.indexOf(w.id)), 3000);
    await sleep(200);
    const wrong = [];
    for (const w of winners) {
      const told = w.buf.filter((m) => m.event === 'JOIN_ROOM' && m.payload.from.roomID === roomID).map((m) => m.payload.from.userID);
      const learnt = [...spec.get(w.id), ...told].sort();
      const want = order.filter((id) => id !== w.id).sort();
      if (JSON.stringify(learnt) !== JSON.stringify(want)) {
        wrong.push(`member ${name(order, w.id)} (node ${nodeOf.get(w)}): spec [${spec.get(w.id).map((id) => name(order, id))}], then told of [${told.map((id) => name(order, id))}]`);
      }
    }
    if (wrong.length) {
      t.diagnostic(`round ${rounds + 1}: ${wrong.length} of 10 members learnt of another member twice or not at all`);
      assert.fail(`round ${rounds + 1} of concurrent joins (#n: the n-th member in Redis's join order, #0 the owner): `
        + `${wrong.length} members learnt of another member twice or not at all:\n  ${wrong.join('\n  ')}`);
    }
    for (const u of [owner, ...users]) await u.close();
  }
  t.diagnostic(`${rounds} rounds of 30 concurrent joins, every member learnt of every other exactly once`);
});

test('Policy versions: a node whose policies differ from the others\' is warned about and shown on /metrics, on every node', T, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-cluster-pol-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'default.lua'),
    readFileSync(path.join(REPO, 'policies', 'default.lua'), 'utf8') + '\n-- another version\n');
  const c = await cluster(t, { nodes: 3, logLevel: 'info', nodeArgs: [[], [], ['--policies', dir]] });
  const t0 = Date.now();
  const seen = await until(async () => {
    const m = await Promise.all(c.nodes.map(nodeMetrics));
    return m.every((x) => x.parley_cluster_policy_mismatch === 1 && x.parley_cluster_nodes === 3);
  }, WITHIN(5000), 50);
  t.diagnostic(`mismatch shown on all 3 nodes after ${Date.now() - t0} ms`);
  assert.ok(seen, 'parley_cluster_policy_mismatch 1 on every node within 5 s');
  assert.match(c.stderr, /warn\s+cluster: node n3 runs policies \w+, this one \w+/);
  const info = (await httpGet(c.node(2).port, '/metrics')).body;
  assert.match(info, /^parley_cluster_info\{node="n3",policy_version="\w+"\} 1$/m);
});

test('Policy versions: nodes on the same policies report no mismatch', T, async (t) => {
  const c = await cluster(t, { nodes: 2 });
  const ok = await until(async () => {
    const m = await Promise.all(c.nodes.map(nodeMetrics));
    return m.every((x) => x.parley_cluster_nodes === 2);
  }, WITHIN(5000), 50);
  assert.ok(ok, 'both nodes see 2 live nodes');
  for (const n of c.nodes) assert.equal((await nodeMetrics(n)).parley_cluster_policy_mismatch, 0);
});

test('Node death: a /ws resume with a token of the dead node, at another node, is answered there (RESUME resumed:false, a new user), not dropped', { ...T, ...(isSio() ? { skip: `plain /ws resume (PARLEY_FRAMING=${FRAMING})` } : {}) }, async (t) => {
  const c = await cluster(t, { nodes: 2, resumeGrace: 10, logLevel: 'info' });
  const a = await connectUser(c.node(0), t);
  const id = await a.ok('GET_ID', {});
  assert.match(id.resumeToken, /^[A-Za-z0-9_-]{22}$/);
  c.node(0).kill('SIGKILL');
  await c.node(0).exited;
  // at once: node 2 still counts node 1 alive (its heartbeat runs out in 1.5 s) and tries to carry the resume there
  const ws = new WebSocket(`${c.node(1).url}?resume=${id.resumeToken}&last=1`);
  t.after(() => ws.terminate());
  const first = await withTimeout(new Promise((resolve, reject) => {
    ws.once('message', (d) => resolve(JSON.parse(d.toString())));
    ws.once('close', (code) => reject(new Error(`closed with ${code} before any event`)));
    ws.once('error', reject);
  }), 5000, 'the RESUME answer');
  assert.equal(first[0], 'RESUME');
  assert.equal(first[1].resumed, false);
  assert.notEqual(first[1].userID, id.userID);
  // the path it took: node 2 tried node 1 and answered itself (the log line
  // may reach us after the WebSocket answer: wait for it, boundedly)
  const seen = await until(() => /the node holding its session can't be reached/.test(c.stderr), 5000, 20);
  assert.ok(seen, `no "can't be reached" line:\n${c.stderr.slice(-3000)}`);
});


test('No sticky sessions: stock socket.io-client (polling, then upgrade) through a round-robin TCP proxy over 3 nodes: 1000 SIGNALs each way, nothing lost', { ...T, ...(FRAMING !== 'sio' ? { skip: `runs once, in the sio framing run (PARLEY_FRAMING=${FRAMING})` } : {}) }, async (t) => {
  const c = await cluster(t, { nodes: 3, limits: FAST });
  const proxy = await roundRobinProxy(t, c.nodes.map((n) => n.port));
  // a new TCP connection per polling request (no keep-alive agent): each may land on another node
  const opts = { reconnection: false, forceNew: true, agent: false, extraHeaders: { Connection: 'close' } };
  const sa = io(`http://127.0.0.1:${proxy.port}`, opts);
  const sb = io(`http://127.0.0.1:${proxy.port}`, opts);
  t.after(() => { sa.close(); sb.close(); });
  const got = { a: [], b: [] };
  sa.on('SIGNAL', (m) => got.a.push(m.signal.seq));
  sb.on('SIGNAL', (m) => got.b.push(m.signal.seq));
  const ask = (s, ev, payload) => withTimeout(new Promise((resolve) => s.emit(ev, payload, resolve)), 5000, ev);
  await Promise.all([sa, sb].map((s) => withTimeout(new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('connect_error', reject);
  }), 10_000, 'socket.io connect through the proxy')));
  const ida = (await ask(sa, 'GET_ID', { requestId: 1 })).userID;
  const idb = (await ask(sb, 'GET_ID', { requestId: 1 })).userID;
  const room = (await ask(sa, 'CREATE_ROOM', { requestId: 2, maxUsers: 2, name: 'rr', password: 'pw', type: 0 })).roomID;
  assert.ok(room, 'CREATE_ROOM through the proxy');
  const j = await ask(sb, 'JOIN_ROOM', { requestId: 3, room, password: 'pw' });
  assert.equal(j.curUsers, 2);
  const N = 1000;
  for (let i = 1; i <= N; i++) {
    sa.emit('SIGNAL', { room, target: idb, signal: { seq: i } });
    sb.emit('SIGNAL', { room, target: ida, signal: { seq: i } });
    if (i % 100 === 0) await sleep(5);  // interleave with the polling cycle and the upgrade
  }
  const done = await until(() => got.a.length >= N && got.b.length >= N, 20_000, 50);
  t.diagnostic(`through the proxy: A got ${got.a.length}, B got ${got.b.length}; transports now ${sa.io.engine.transport.name}/${sb.io.engine.transport.name}; TCP connections per node ${[...proxy.perPort.values()].join('/')}`);
  assert.ok(done, `signals lost: A got ${got.a.length}, B got ${got.b.length} of ${N}`);
  const inOrder = (l) => l.length === N && l.every((v, k) => v === k + 1);
  assert.ok(inOrder(got.a), 'A: every SIGNAL once, in order');
  assert.ok(inOrder(got.b), 'B: every SIGNAL once, in order');
  assert.ok([...proxy.perPort.values()].filter((n) => n > 0).length >= 2, 'the proxy spread the connections over several nodes');
});

test('Redis death: a user who leaves while Redis is away leaves the cluster\'s rooms once it is back (the others are told)', T, async (t) => {
  const c = await cluster(t, { nodes: 2, logLevel: 'info' });
  const a = await connectUser(c.node(0), t);
  const b = await connectUser(c.node(1), t);
  const roomID = await roomWith([a, b]);
  await c.redis.kill('SIGKILL');
  await a.close();  // a leave (resume grace 0 here): the cluster can't be told now
  await b.expectNothing(300);
  await c.redis.restart();
  const t0 = Date.now();
  // (when it does not come, the nodes' logs say how far the way back went)
  const told = await b.next('DISCONNECT', { timeout: 10_000 }).catch((e) => {
    throw new Error(`${e.message}\n--- node 1 (A's):\n${c.nodes[0].stderr}\n--- node 2 (B's):\n${c.nodes[1].stderr}`);
  });
  assert.deepEqual(told, { userID: a.id, roomID });
  t.diagnostic(`B told of A's leave ${Date.now() - t0} ms after Redis came back`);
  assert.deepEqual(await members(c.redis.port, roomID), [b.id]);
  await b.ok('UPDATE_ROOM', { room: roomID, maxUsers: 10, name: 'B owns it', password: 'pw' });
});

test('Redis death: the same leave when the other node comes back to Redis last (it vouches for the leaver, whose node has forgotten it: the leaver goes again)', T, async (t) => {
  const c = await cluster(t, { nodes: 2, logLevel: 'info' });
  const a = await connectUser(c.node(0), t);
  const b = await connectUser(c.node(1), t);
  const roomID = await roomWith([a, b]);
  await c.redis.kill('SIGKILL');
  await a.close();
  await b.expectNothing(300);
  // node 2 held still while Redis comes back: node 1 is back first and
  // forgets A for good; then node 2 makes the room again as its view has it
  // (A included, as node 1's), and node 1 must make A leave again
  const n2 = c.nodes[1];
  process.kill(n2.proc.pid, 'SIGSTOP');
  let stopped = true;
  t.after(() => { if (stopped) process.kill(n2.proc.pid, 'SIGCONT'); });
  const mark = c.nodes[0].stderr.length;
  await c.redis.restart();
  assert.ok(await until(() => /link up/.test(c.nodes[0].stderr.slice(mark)), 5000), 'node 1 back on Redis');
  await sleep(400);
  process.kill(n2.proc.pid, 'SIGCONT');
  stopped = false;
  assert.deepEqual(await b.next('DISCONNECT', { timeout: 10_000 }), { userID: a.id, roomID });
  assert.ok(await until(async () => JSON.stringify(await members(c.redis.port, roomID)) === JSON.stringify([b.id]), 5000),
    `Redis holds only B: ${JSON.stringify(await members(c.redis.port, roomID))}`);
});

// ---------------------------------------------------------------------------
// Socket.IO recovery on another node: the stock client comes back to a node
// that does not hold its user; the session moves to the node that does.
// ---------------------------------------------------------------------------

test('Resume across nodes (Socket.IO): stock socket.io-client, dropped by engine.close() on node 1, comes back through node 2: socket.recovered, the same socket.id, every missed SIGNAL once and in order, the peer saw nothing', { ...T, ...(isSio() ? {} : { skip: `Socket.IO recovery (PARLEY_FRAMING=${FRAMING}); the /ws resume across nodes is tested in resume's cluster pass` }) }, async (t) => {
  const c = await cluster(t, { nodes: 2, resumeGrace: 10, logLevel: 'info', limits: FAST });
  const [n1, n2] = c.nodes;
  const transports = FRAMING === 'sio-ws' ? ['websocket'] : ['polling', 'websocket'];
  const sock = io(n1.httpBase, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100, transports });
  t.after(() => sock.disconnect());
  await withTimeout(new Promise((r, j) => { sock.once('connect', r); sock.once('connect_error', j); }), 5000, 'connect');
  const got = [];
  sock.on('SIGNAL', (p) => got.push(p.signal.n));
  const ask = (ev, payload) => withTimeout(new Promise((r) => { sock.once(ev, r); sock.emit(ev, payload); }), 5000, ev);
  const created = await ask('CREATE_ROOM', { requestId: 1, maxUsers: 5, name: 'r', password: 'pw', type: 0 });
  const b = await connectUser(n2, t);
  await joinRoom(b, created.roomID, 'pw');
  const a = { id: sock.id };
  const sig = (n) => b.send('SIGNAL', { source: b.id, target: a.id, room: created.roomID, signal: { n } });
  sig(0);
  assert.ok(await until(() => got.length === 1, 5000), 'the first SIGNAL');

  // drop on node 1; the next engine connects to node 2
  const reconnected = new Promise((r) => sock.once('connect', r));
  sock.io.uri = n2.httpBase;
  sock.io.engine.close();
  await sleep(30);
  for (let n = 1; n < 6; n++) sig(n);
  const logs = () => `node 1:\n${n1.stderr}\nnode 2:\n${n2.stderr}`;
  await withTimeout(reconnected, 10_000, 'reconnect through node 2').catch((e) => { t.diagnostic(logs()); throw e; });
  if (!sock.recovered) t.diagnostic(logs());
  assert.equal(sock.recovered, true, 'socket.recovered');
  assert.equal(sock.id, a.id, 'the same socket.id (userID)');
  assert.ok(await until(() => got.length >= 6, 5000), `6 SIGNALs, got ${got}`);
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5], 'every missed SIGNAL once, in order');
  await b.expectNothing(300);  // no DISCONNECT, no JOIN
  assert.match(n2.stderr, /moved to the node holding the user it recovers/);
  assert.match(n1.stderr, /carried here from another node to recover its user/);

  // it goes on: both ways, and over the WebSocket once the upgrade is done
  for (let n = 6; n < 26; n++) { sig(n); await sleep(5); }
  assert.ok(await until(() => got.length >= 26, 5000), `26 SIGNALs, got ${got.length}`);
  assert.deepEqual(got, Array.from({ length: 26 }, (_, k) => k));
  sock.emit('SIGNAL', { source: a.id, room: created.roomID, target: b.id, signal: { back: 1 } });
  const back = await b.next('SIGNAL');
  assert.deepEqual(back.signal, { back: 1 });
  assert.equal(back.source, a.id);
  if (!await until(() => sock.io.engine.transport.name === 'websocket', 5000)) t.diagnostic(logs());
  assert.equal(sock.io.engine.transport.name, 'websocket', 'the transport after the move');
  sock.disconnect();  // 41: a leave, at once
  assert.deepEqual(await b.next('DISCONNECT'), { userID: a.id, roomID: created.roomID });
});

test('Resume across nodes: a request asking a node to adopt a session is refused unless that node holds the user it names (a client cannot pick a sid or forge a move)', { ...T, ...(FRAMING !== 'ws' ? { skip: `HTTP requests only: runs once, in the /ws framing run (PARLEY_FRAMING=${FRAMING})` } : {}) }, async (t) => {
  const c = await cluster(t, { nodes: 2, resumeGrace: 10 });
  const [n1] = c.nodes;
  const post = (query, body) => new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: n1.port, method: 'POST', path: `/socket.io/?EIO=4&transport=polling&${query}`, headers: { 'Content-Type': 'text/plain;charset=UTF-8' } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
  const sid = 'A'.repeat(22);
  for (const [query, why] of [
    [`sid=${sid}&adopt=${'B'.repeat(22)}`, 'a pid nobody holds'],
    [`sid=${sid}&adopt=`, 'an empty pid'],
    [`sid=short&adopt=${'B'.repeat(22)}`, 'a malformed sid'],
  ]) {
    const r = await post(query, `40{"pid":"${'B'.repeat(22)}","offset":"0"}`);
    assert.equal(r.status, 400, `${why}: status`);
    assert.match(r.body, /Session ID unknown/, why);
  }
  assert.equal(await redisCommand(c.redis.port, 'EXISTS', `parley:loc:s:${sid}`), 0, 'nothing claimed for the sid');
  const m = await nodeMetrics(n1);
  assert.equal(m.parley_eio_sessions, 0, 'no session made');
});

test('No sticky sessions: a polling handshake is answered once Redis records the session, so the very next request finds it through any node (Redis held still: no answer yet; held past the link deadline: answered anyway)', { ...T, ...(FRAMING !== 'ws' ? { skip: `HTTP requests only: runs once, in the /ws framing run (PARLEY_FRAMING=${FRAMING})` } : {}) }, async (t) => {
  const c = await cluster(t, { nodes: 2 });
  const [n1, n2] = c.nodes;
  const redisPid = c.redis.proc.pid;
  let stopped = false;
  t.after(() => { if (stopped) process.kill(redisPid, 'SIGCONT'); });
  const handshake = () => {
    let answered = null;
    const p = httpGet(n1.port, '/socket.io/?EIO=4&transport=polling', {}, 10_000).then((r) => { answered = Date.now(); return r; });
    return { p, at: () => answered };
  };
  // Redis holds still: node 1's claim of the new sid can't be recorded, so the handshake waits
  process.kill(redisPid, 'SIGSTOP');
  stopped = true;
  const h = handshake();
  await sleep(300);
  assert.equal(h.at(), null, 'no handshake answer while Redis has not recorded the session');
  const resumed = Date.now();
  process.kill(redisPid, 'SIGCONT');
  stopped = false;
  const hs = await h.p;
  assert.equal(hs.status, 200);
  assert.ok(h.at() >= resumed, 'answered after Redis went on');
  const sid = JSON.parse(hs.body.slice(1)).sid;
  assert.equal(await redisCommand(c.redis.port, 'GET', `parley:loc:s:${sid}`), 'n1', 'Redis names node 1 for the sid');
  // the client's next request, through the other node, finds the session
  const posted = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: n2.port, method: 'POST', path: `/socket.io/?EIO=4&transport=polling&sid=${sid}`, agent: false, headers: { 'Content-Type': 'text/plain;charset=UTF-8', Connection: 'close' } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.end('40');
  });
  assert.deepEqual(posted, { status: 200, body: 'ok' }, 'the CONNECT posted through node 2 reached node 1');
  const polled = await httpGet(n2.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`);
  assert.equal(polled.status, 200);
  assert.match(polled.body, /^40\{"sid":/, 'the CONNECT answer, polled through node 2');
  // Redis held still past the link's deadline (1 s): the handshake is answered anyway (new sessions are still taken)
  process.kill(redisPid, 'SIGSTOP');
  stopped = true;
  const t0 = Date.now();
  const h2 = handshake();
  const hs2 = await h2.p;
  const waited = h2.at() - t0;
  process.kill(redisPid, 'SIGCONT');
  stopped = false;
  assert.equal(hs2.status, 200);
  assert.match(hs2.body, /^0\{"sid":/);
  t.diagnostic(`with Redis held still, the handshake was answered after ${waited} ms`);
  if (!SANITIZED) assert.ok(waited < 2500, `answered within the link deadline and a margin: ${waited} ms`);
});
