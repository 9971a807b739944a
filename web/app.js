// app.js - the Parley demo page. Create or join a room; in a P2PMesh room
// every tab connects to every other with RTCPeerConnection, signalled through
// Parley, and chats over a DataChannel; camera and microphone on request.
//
// Who offers: the newcomer offers to each member already there (the spec of
// its JOIN_ROOM); members wait for the newcomer's offer. Later renegotiation
// (a camera started on either side) uses "perfect negotiation": the peer with
// the greater userID is the polite one and yields when offers collide.

import { ParleyClient, RoomType, Errors } from '/parley.js';

const $ = (id) => document.getElementById(id);
// The protocol's three types, in words; any other type the server offers
// (GET_TYPES: the tenant's policy) goes by the name its policy gives it.
const TYPE_NAMES = { 0: 'P2P mesh', 1: 'SFU, client side', 2: 'SFU, server side' };
const TYPE_HINTS = { 0: 'everyone connects to everyone', 1: 'you act as the SFU' };

/** Fill the type list with the types the server offers this tenant. */
async function learnTypes() {
  let reply;
  try { reply = await client.getTypes(); } catch { return; }  // an older server: keep the built-in list
  if (!reply || !Array.isArray(reply.types) || !reply.types.length) return;
  const select = $('create-type');
  const was = select.value;
  select.replaceChildren(...reply.types.map(({ type, name, maxUsers }) => {
    if (!(type in TYPE_NAMES)) TYPE_NAMES[type] = name;
    const opt = document.createElement('option');
    opt.value = String(type);
    opt.dataset.max = String(maxUsers);
    opt.textContent = `${TYPE_NAMES[type]}${TYPE_HINTS[type] ? ` (${TYPE_HINTS[type]})` : ''} — up to ${maxUsers}`;
    return opt;
  }));
  if ([...select.options].some((o) => o.value === was)) select.value = was;
  capMax();
}

/** The max-users field follows the chosen type's limit. */
function capMax() {
  const opt = $('create-type').selectedOptions[0];
  if (!opt || !opt.dataset.max) return;
  const max = $('create-max');
  max.max = opt.dataset.max;
  if (Number(max.value) > Number(opt.dataset.max)) max.value = opt.dataset.max;
}
$('create-type').addEventListener('change', capMax);
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

const client = new ParleyClient(wsUrl);
/** The room we are in: {ID, name, maxUsers, type, special} or null. */
let room = null;
/** userID -> {pc, dc, polite, makingOffer, ignoreOffer, chain, stream} */
const peers = new Map();
/** userIDs in the room besides us, in the order we learnt of them. */
const members = new Set();
let localStream = null;
/** Signals for our peers made while the connection was down: sent once resumed. */
const outbox = [];

const short = (id) => (id ? id.slice(0, 6) : '?');

// ------------------------------------------------------------------ status

function setStatus(state, text) {
  const s = $('status');
  s.dataset.state = state;
  s.textContent = text;
  const ready = state === 'connected';
  $('create-btn').disabled = !ready;
  $('join-btn').disabled = !ready;
}

function showError(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = !text;
}

/** Plain words for a failed request. */
function describeError(err, what) {
  switch (err && err.code) {
    case Errors.INVALID_PASSWORD: return 'Wrong password for that room.';
    case Errors.NO_SUCH_ROOM: return 'There is no room with that ID. Check the ID (rooms disappear when everyone has left).';
    case Errors.LIMIT_REACHED:
      return what === 'join'
        ? 'That room is full.'
        : `The server's limits do not allow that (${err.msg}). Max users must be between 1 and 50.`;
    case Errors.ROOM_ERROR: return `The server refused: ${err.msg}.`;
    case Errors.CLOSED: return 'Not connected to the server. Trying again…';
    case Errors.TIMEOUT: return 'The server did not answer in time.';
    default: return `Something went wrong: ${(err && (err.msg || err.message)) || err}.`;
  }
}

// A drop the client will try to resume keeps the room and the peer
// connections (the DataChannels do not need the server); `resumed` means the
// server kept us — same userID, same room, the signals we missed follow.
// An `open` after a reconnect is a new user: the room is gone for us.
client.on('open', ({ userID, reconnected, stateLost }) => {
  if (stateLost && room) {
    leaveLocally();
    showError('The connection to the server was lost, so you have left the room.');
  }
  outbox.length = 0;
  setStatus('connected', `Connected as ${short(userID)}${reconnected ? ' (reconnected)' : ''}`);
  $('status').title = userID;
  learnTypes();
});
client.on('resumed', ({ userID }) => {
  setStatus('connected', `Connected as ${short(userID)} (resumed)`);
  $('status').title = userID;
  for (const { target, roomID, signal } of outbox.splice(0)) {
    if (room && room.ID === roomID && peers.has(target)) client.signal({ target, room: roomID, signal });
  }
});
client.on('close', ({ willReconnect, willResume }) => {
  if (room && !willResume) {
    leaveLocally();
    showError('The connection to the server was lost, so you have left the room.');
  }
  setStatus('disconnected', willResume ? 'Connection lost. Resuming…'
    : willReconnect ? 'Disconnected. Reconnecting…' : 'Disconnected.');
});
client.on('reconnecting', ({ attempt, delay }) => {
  setStatus('reconnecting', `Disconnected. Reconnecting (attempt ${attempt}, in ${(delay / 1000).toFixed(1)} s)…`);
});

// ------------------------------------------------------------------- rooms

$('create-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('');
  const maxUsers = Number($('create-max').value);
  const type = Number($('create-type').value);
  try {
    const reply = await client.createRoom(maxUsers, $('create-name').value, $('create-password').value, type);
    // The ROOM event says SFUServerSide (2) to the creator of an SFUClientSide
    // (1) room, who acts as its SFU; show the room's own type here.
    if (room && room.ID === reply.roomID) { room.createdType = reply.type; renderRoom(); }
  } catch (err) {
    showError(describeError(err, 'create'));
  }
});

$('join-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('');
  const id = $('join-id').value.trim();
  if (!id) { showError('Enter the ID of the room to join.'); return; }
  try {
    await client.joinRoom(id, $('join-password').value);
  } catch (err) {
    showError(describeError(err, 'join'));
  }
});

$('leave-btn').addEventListener('click', async () => {
  if (!room) return;
  const id = room.ID;
  leaveLocally();
  try { await client.leaveRoom(id); } catch { /* gone already: nothing to do */ }
});

$('copy-btn').addEventListener('click', async () => {
  try { await navigator.clipboard.writeText($('room-id').textContent); } catch { /* not allowed */ }
});

// ROOM: after our create or join (and after an update, which this page does not send).
client.on('ROOM', (r) => {
  if (r.update) {
    if (room && r.ID === room.ID) { room.name = r.name; room.maxUsers = r.maxUsers; renderRoom(); }
    return;
  }
  if (room && room.ID !== r.ID) {
    // This page shows one room at a time: leave the other one.
    client.leaveRoom(r.ID).catch(() => {});
    return;
  }
  const joiningAgain = room && room.ID === r.ID;
  room = { ID: r.ID, name: r.name, maxUsers: r.maxUsers, type: r.type, special: r.special };
  location.hash = r.ID;
  if (!joiningAgain) {
    members.clear();
    if (r.type === RoomType.P2PMesh && Array.isArray(r.special)) {
      for (const id of r.special) members.add(id);
      // The newcomer offers to everyone already here.
      for (const id of r.special) connectTo(id, true);
    } else if (typeof r.special === 'string' && r.special !== client.userID) {
      members.add(r.special);
    }
  }
  renderRoom();
});

client.on('NEWUSER', ({ base, ID }) => {
  if (!room || base !== room.ID) return;
  members.add(ID);
  renderMembers();
  addChatLine(null, `${short(ID)} joined.`);
  // In a mesh the newcomer offers; we wait for its SIGNAL.
});

client.on('DISCONNECT', ({ ID, room: roomID }) => {
  if (!room || roomID !== room.ID) return;
  members.delete(ID);
  dropPeer(ID);
  renderMembers();
  addChatLine(null, `${short(ID)} left.`);
});

client.on('ROOM_ERROR', ({ msg, target }) => {
  // Request failures are shown by the code that made the request; a failed
  // SIGNAL only arrives here.
  console.warn('parley: ROOM_ERROR', target, msg);
});

function leaveLocally() {
  outbox.length = 0;
  for (const id of [...peers.keys()]) dropPeer(id);
  members.clear();
  room = null;
  history.replaceState(null, '', location.pathname);
  $('chat-log').replaceChildren();
  renderRoom();
}

// ------------------------------------------------------------- rendering

function renderRoom() {
  $('lobby').hidden = !!room;
  $('room').hidden = !room;
  if (!room) return;
  $('room-name').textContent = room.name;
  $('room-id').textContent = room.ID;
  const type = room.createdType ?? room.type;
  $('room-type').textContent = TYPE_NAMES[type] ?? `type ${type}`;
  $('room-max').textContent = String(room.maxUsers);
  const note = $('room-note');
  if (room.type === RoomType.P2PMesh) {
    note.hidden = true;
  } else {
    note.hidden = false;
    note.textContent = room.special === client.userID
      ? 'You created this SFU room, so your client is its SFU. This demo connects peers only in P2P mesh rooms.'
      : `The SFU of this room is ${short(room.special)}. This demo connects peers only in P2P mesh rooms.`;
  }
  renderMembers();
}

function renderMembers() {
  const ul = $('members');
  const items = [];
  const me = document.createElement('li');
  me.dataset.peerId = client.userID || '';
  me.dataset.self = 'true';
  me.textContent = `${short(client.userID)} (you)`;
  items.push(me);
  for (const id of members) {
    const li = document.createElement('li');
    const p = peers.get(id);
    li.dataset.peerId = id;
    li.dataset.conn = p ? p.pc.connectionState : 'waiting';
    li.dataset.channel = p && p.dc ? p.dc.readyState : 'none';
    li.title = id;
    const name = document.createElement('span');
    name.textContent = short(id);
    const state = document.createElement('span');
    state.className = `state state-${li.dataset.conn}`;
    state.textContent = room && room.type === RoomType.P2PMesh
      ? (li.dataset.channel === 'open' ? 'connected, chat open' : li.dataset.conn)
      : (id === room?.special ? 'SFU' : 'member');
    li.append(name, ' ', state);
    items.push(li);
  }
  ul.replaceChildren(...items);
}

// ------------------------------------------------------------------ WebRTC

function connectTo(id, initiator) {
  if (peers.has(id)) return peers.get(id);
  const pc = new RTCPeerConnection({ iceServers: [] });
  const peer = {
    pc, dc: null, polite: (client.userID || '') > id, makingOffer: false, ignoreOffer: false,
    chain: Promise.resolve(), stream: null,
  };
  peers.set(id, peer);
  const send = (signal) => sendSignal(id, signal);

  pc.onicecandidate = ({ candidate }) => { if (candidate) send({ candidate: candidate.toJSON() }); };
  pc.onnegotiationneeded = async () => {
    try {
      peer.makingOffer = true;
      await pc.setLocalDescription();
      send({ description: pc.localDescription.toJSON() });
    } catch (e) {
      console.warn('negotiation failed', e);
    } finally {
      peer.makingOffer = false;
    }
  };
  pc.onconnectionstatechange = () => {
    renderMembers();
    if (pc.connectionState === 'failed') pc.restartIce();
  };
  pc.ontrack = ({ streams: [stream], track }) => {
    const s = stream || new MediaStream([track]);
    peer.stream = s;
    showVideo(id, s, false);
  };
  pc.ondatachannel = ({ channel }) => setupChannel(id, peer, channel);

  if (localStream) for (const t of localStream.getTracks()) pc.addTrack(t, localStream);
  if (initiator) setupChannel(id, peer, pc.createDataChannel('chat'));
  renderMembers();
  return peer;
}

function setupChannel(id, peer, dc) {
  peer.dc = dc;
  dc.onopen = () => { renderMembers(); addChatLine(null, `Chat with ${short(id)} is open.`); };
  dc.onclose = () => renderMembers();
  dc.onmessage = ({ data }) => {
    let text = data;
    try { text = JSON.parse(data).text; } catch { /* plain text */ }
    addChatLine(id, String(text));
  };
  renderMembers();
}

// A SIGNAL from `source`: {description} or {candidate}, handled in order per peer.
client.on('SIGNAL', ({ source, room: roomID, signal }) => {
  if (!room || roomID !== room.ID || room.type !== RoomType.P2PMesh || !signal) return;
  if (!members.has(source)) { members.add(source); }
  const peer = peers.get(source) || connectTo(source, false);
  peer.chain = peer.chain.then(() => handleSignal(source, peer, signal)).catch((e) => console.warn('signal', e));
});

async function handleSignal(id, peer, { description, candidate }) {
  const { pc } = peer;
  if (pc.signalingState === 'closed') return;
  if (description) {
    const collision = description.type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
    peer.ignoreOffer = !peer.polite && collision;
    if (peer.ignoreOffer) return;
    await pc.setRemoteDescription(description);
    if (description.type === 'offer') {
      await pc.setLocalDescription();
      sendSignal(id, { description: pc.localDescription.toJSON() });
    }
  } else if (candidate) {
    try {
      await pc.addIceCandidate(candidate);
    } catch (e) {
      if (!peer.ignoreOffer) throw e;
    }
  }
}

/** SIGNAL to a peer of our room; kept for later while the connection is down. */
function sendSignal(target, signal) {
  if (!room) return;
  if (!client.signal({ target, room: room.ID, signal })) outbox.push({ target, roomID: room.ID, signal });
}

function dropPeer(id) {
  const p = peers.get(id);
  if (!p) return;
  peers.delete(id);
  try { p.dc?.close(); } catch { /* closed */ }
  p.pc.close();
  removeVideo(id);
}

// ------------------------------------------------------------------- media

$('camera-btn').addEventListener('click', async () => {
  const btn = $('camera-btn');
  if (localStream) {
    for (const t of localStream.getTracks()) t.stop();
    for (const p of peers.values()) {
      for (const s of p.pc.getSenders()) if (s.track) p.pc.removeTrack(s);
    }
    localStream = null;
    removeVideo('local');
    btn.textContent = 'Start camera & microphone';
    return;
  }
  try {
    localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (e) {
    showError(e && e.name === 'NotAllowedError'
      ? 'Camera and microphone were not allowed. You can still chat.'
      : `No camera or microphone could be opened (${e && e.name}).`);
    return;
  }
  showVideo('local', localStream, true);
  for (const p of peers.values()) for (const t of localStream.getTracks()) p.pc.addTrack(t, localStream);
  btn.textContent = 'Stop camera & microphone';
});

function showVideo(id, stream, local) {
  let tile = document.querySelector(`#videos [data-peer-id="${CSS.escape(id)}"]`);
  if (!tile) {
    tile = document.createElement('figure');
    tile.className = 'tile';
    tile.dataset.peerId = id;
    tile.dataset.testid = local ? 'video-local' : 'video-remote';
    const v = document.createElement('video');
    v.autoplay = true;
    v.playsInline = true;
    v.muted = local;   // never play our own microphone back
    const cap = document.createElement('figcaption');
    cap.textContent = local ? 'You' : short(id);
    tile.append(v, cap);
    $('videos').append(tile);
  }
  const v = tile.querySelector('video');
  if (v.srcObject !== stream) v.srcObject = stream;
  v.play().catch(() => {});
}

function removeVideo(id) {
  document.querySelector(`#videos [data-peer-id="${CSS.escape(id)}"]`)?.remove();
}

// -------------------------------------------------------------------- chat

$('chat-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('chat-input');
  const text = input.value.trim();
  if (!text) return;
  let sent = 0;
  for (const p of peers.values()) {
    if (p.dc && p.dc.readyState === 'open') { p.dc.send(JSON.stringify({ text })); sent++; }
  }
  addChatLine(client.userID, text, true);
  if (!sent) addChatLine(null, 'Nobody is connected yet: the message went nowhere.');
  input.value = '';
});

function addChatLine(from, text, self = false) {
  const li = document.createElement('li');
  if (from) {
    li.className = self ? 'msg self' : 'msg';
    li.dataset.from = from;
    const who = document.createElement('strong');
    who.textContent = self ? 'you' : short(from);
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    li.append(who, ': ', body);
  } else {
    li.className = 'info';
    li.textContent = text;
  }
  const log = $('chat-log');
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

// ----------------------------------------------------------------- startup

if (location.hash.length > 1) $('join-id').value = decodeURIComponent(location.hash.slice(1));
// Closing the tab is leaving: say so (close 1000). Without it the browser's
// close 1001 is a drop, and the server would keep us for the resume grace.
window.addEventListener('pagehide', () => client.close());

/** For tests and the console: the state of every peer connection. */
window.parleyDemo = {
  client,
  get room() { return room; },
  peers() {
    const out = {};
    for (const [id, p] of peers) {
      out[id] = { connectionState: p.pc.connectionState, iceConnectionState: p.pc.iceConnectionState,
        channel: p.dc ? p.dc.readyState : 'none' };
    }
    return out;
  },
};
