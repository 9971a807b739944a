#!/usr/bin/env python3
"""tests/fuzz/lifecycle_seeds.py [DIR [DICT]] - writes the seed corpus of
fuzz_lifecycle (default tests/fuzz/corpus/lifecycle/) in its op encoding (see
the comment at the top of fuzz_lifecycle.c): the audit's reproductions of
finding 1 (a dying Engine.IO session re-attached by a pipelined poll) and
finding 2 (a polling queue overflowing inside the event layer), and a few
generic scripts; and its libFuzzer dictionary (default
tests/fuzz/lifecycle.dict): single client steps (a handshake, a poll, a
pipelined poll, a POST of one packet, a close...) as encoded ops, so that
mutations insert whole steps instead of bytes that shift every op after them."""
import os
import sys

CAP_256K, CAP_64K, CAP_16K = range(3)  # the first byte: the server's out_cap (more in fuzz_lifecycle.c's configure())
OPEN, SEND, PIPE, WS, CLOSE, RUN, SETTLE, DRAIN, DRAINALL, SLEEP, RAW = range(11)
HS, GETSID, POST, UPWS, UPSIO, PROBE, HEALTH, OPTIONS, RAWREQ, GETORIGIN = range(10)
P_CLOSE, P_PING, P_PONG, P_NOOP, P_CONNECT, P_DISCONN, P_PROBE, P_UPGRADE = range(8)
P_GET_ID, P_CREATE, P_JOIN, P_SIGNAL, P_LEAVE, P_ACK_GET_ID, P_RAW, P_PINGS = range(8, 16)


def pkt(kind, *args):
    return bytes([kind, *args])


def create(max_users=3): return pkt(P_CREATE, max_users - 1)
def join(room=0): return pkt(P_JOIN, room)
def leave(room=0): return pkt(P_LEAVE, room)
def signal(room, user, size): return pkt(P_SIGNAL, room, user, size >> 8, size & 255)


def req(kind, flags=0, *rest):
    return bytes([kind, flags, *rest])


def handshake(): return req(HS)
def get(sid): return req(GETSID, 0, sid)


def post(sid, *packets):
    return req(POST, 0, sid, len(packets) - 1) + b"".join(packets)


TURN = 11       # op + TURN: a loop turn after the write (send ops)
REPEAT = 22     # PIPE + REPEAT (+ TURN): the first request repeated


def send(k, r, split=0): return bytes([SEND, k]) + r + bytes([split])
def pipe(k, *rs, split=0): return bytes([PIPE, k, len(rs) - 2]) + b"".join(rs) + bytes([split])
def ws(k, ctl, packet, split=0): return bytes([WS, k, ctl]) + packet + bytes([split])
def close(k, mode=0): return bytes([CLOSE, k, mode])


S = bytes([SETTLE])


def finding1_reattach():
    """Connection 1 pipelines two polls for session 0; connection 2 closes the
    session (POST 1); the second poll re-attaches to it; closing 1 uses it."""
    return (send(0, handshake()) + S + pipe(1, get(0), get(0)) + S +
            send(2, post(0, pkt(P_CLOSE))) + S + close(1) + S)


def finding1_zombie_user():
    """The pipelined request after the held poll is a POST 40 + JOIN_ROOM: a
    user whose peer is the closed session; a SIGNAL to it calls through it."""
    return (send(0, handshake()) + S + send(3, handshake()) + S +
            send(3, post(1, pkt(P_CONNECT), create())) + S + send(3, get(1)) + S +   # learns room 0
            pipe(1, get(0), post(0, pkt(P_CONNECT), join(0))) + S +
            send(2, post(0, pkt(P_CLOSE))) + S +
            send(3, get(1)) + S +                                                  # learns the user
            send(3, post(1, signal(0, 0, 16))) + S + close(1) + S)


def finding2(sizes, last):
    """Session B (1) never polls; A (0) fills B's queue with SIGNALs up to a
    few bytes under the cap; then `last` (A leaves the room: B is notified
    inside notify_others, or B joins a second room: its own JOIN_ROOM reply)
    overflows it and closes B while proto.c still holds the room / user;
    "none": server_stop closing A does it (when it closes A before B)."""
    setup = (send(0, handshake()) + S + send(1, handshake()) + S +
             send(2, post(0, pkt(P_CONNECT), create(), create())) + S + send(2, get(0)) + S +  # rooms 0, 1
             send(3, post(1, pkt(P_CONNECT), join(0))) + S + send(2, get(0)) + S)            # user 0 = B
    fill = send(2, post(0, *[signal(0, 0, n) for n in sizes])) + S
    if last == "leave":
        return setup + fill + send(2, post(0, leave(0))) + S
    if last == "join":
        return setup + fill + send(3, post(1, join(1))) + S
    return setup + fill  # at the end, server_stop closes A first (or not: hash order) and notifies B


def generic():
    seeds = {}
    seeds["ws-direct"] = (send(0, req(UPSIO)) + S + ws(0, 0, pkt(P_CONNECT)) + ws(0, 0, pkt(P_GET_ID)) +
                          ws(0, 0, create()) + S + bytes([SLEEP, 24]) + ws(0, 0, pkt(P_PONG)) + S + close(0) + S)
    seeds["upgrade"] = (send(0, handshake()) + S + send(0, get(0)) + send(1, req(PROBE, 0, 0)) + S +
                        ws(1, 0, pkt(P_PROBE)) + S + ws(1, 0, pkt(P_UPGRADE)) + S + ws(1, 0, pkt(P_CONNECT)) + S +
                        ws(1, 4, b"") + S)
    seeds["plain-ws"] = (send(0, req(UPWS)) + send(1, req(UPWS)) + S + ws(0, 16, pkt(P_GET_ID)) +
                         ws(1, 16, pkt(P_GET_ID)) + ws(0, 16, create()) + S + bytes([DRAINALL]) +
                         ws(1, 16, join(0)) + S + ws(0, 16, signal(0, 1, 300), split=128) + S +
                         bytes([SLEEP, 24]) + S + close(0, 1) + S)
    seeds["poll-heartbeat"] = (send(0, handshake()) + S + send(1, post(0, pkt(P_CONNECT), pkt(P_GET_ID))) +
                               send(0, get(0)) + S + bytes([SLEEP, 24]) + send(0, get(0)) + S +
                               send(1, post(0, pkt(P_PONG))) + bytes([SLEEP, 24, SLEEP, 24]) + S)
    seeds["misc-http"] = (send(0, req(HEALTH)) + send(0, req(HEALTH, 2)) + send(0, req(OPTIONS)) +
                          send(1, req(RAWREQ, 0, 6) + b"GET / ") + bytes([RAW, 1, 4]) + b"\r\n\r\n" + S +
                          send(2, req(GETSID, 1, 0)) + S)
    seeds["slow-reader"] = (send(0, handshake()) + S + send(1, post(0, pkt(P_CONNECT), create())) +
                            send(0, get(0)) + S + bytes([DRAIN, 0]) + send(3, req(UPWS)) + S +
                            ws(3, 16, pkt(P_GET_ID)) + S + ws(3, 16, join(0)) + S + bytes([DRAIN, 3]) +
                            send(1, post(0, signal(0, 0, 65000), signal(0, 0, 65000), signal(0, 0, 65000),
                                         signal(0, 0, 65000), signal(0, 0, 65000))) + S + S)
    return seeds


def dictionary():
    """One client step each, with its loop turn: the fuzzer combines them."""
    t = bytes([SEND + TURN])
    toks = [t + bytes([0]) + handshake() + b"\0",
            t + bytes([1]) + get(0) + b"\0",
            t + bytes([2]) + get(0) + b"\0",
            bytes([PIPE + TURN + REPEAT, 1, 0]) + get(0) + b"\0",
            bytes([PIPE + TURN, 1, 0]) + get(0) + get(0) + b"\0",
            bytes([PIPE + TURN, 1, 0]) + get(0) + post(0, pkt(P_CONNECT)) + b"\0",
            t + bytes([2]) + post(0, pkt(P_CLOSE)) + b"\0",
            t + bytes([2]) + post(0, pkt(P_PONG)) + b"\0",
            t + bytes([2]) + post(0, pkt(P_RAW, 1, 0x21)) + b"\0",
            t + bytes([2]) + post(0, pkt(P_CONNECT), create()) + b"\0",
            t + bytes([3]) + post(1, pkt(P_CONNECT), join(0)) + b"\0",
            t + bytes([2]) + post(0, signal(0, 0, 16000)) + b"\0",
            t + bytes([2]) + post(0, leave(0)) + b"\0",
            t + bytes([3]) + post(1, pkt(P_PINGS, 100)) + b"\0",
            t + bytes([0]) + req(UPSIO) + b"\0",
            t + bytes([1]) + req(PROBE, 0, 0) + b"\0",
            bytes([WS + TURN, 0, 0]) + pkt(P_CONNECT) + b"\0",
            close(1), bytes([SETTLE]), bytes([SLEEP, 24]), bytes([DRAINALL])]
    return ['"' + "".join("\\x%02x" % c for c in tok) + '"' for tok in toks]


def main():
    here = os.path.dirname(__file__)
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "lifecycle")
    dict_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "lifecycle.dict")
    with open(dict_path, "w") as f:
        f.write("# fuzz_lifecycle: encoded client steps, written by lifecycle_seeds.py\n")
        f.write("\n".join(dictionary()) + "\n")
    os.makedirs(out, exist_ok=True)
    # The last SIGNAL's size, found by sweeping: with out_cap 256 KiB (4 x 65000
    # first) leave overflows for 1260-1320, join for 1200-1320; with 16 KiB
    # leave for 16000-16060, join for 15940-16060.
    big = [65000] * 4
    seeds = {"finding1-reattach": finding1_reattach(), "finding1-zombie-user": finding1_zombie_user(),
             "finding2-leave": finding2(big + [1290], "leave"), "finding2-join": finding2(big + [1260], "join"),
             "finding2-shutdown": finding2(big + [1290], "none")}
    seeds.update(generic())
    seeds = {name: bytes([CAP_256K]) + data for name, data in seeds.items()}
    seeds["finding2-leave-16k"] = bytes([CAP_16K]) + finding2([16030], "leave")
    seeds["finding2-join-16k"] = bytes([CAP_16K]) + finding2([16000], "join")
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
