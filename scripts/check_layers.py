#!/usr/bin/env python3
"""scripts/check_layers.py - the include graph of core/ against the layers of
docs/architecture.md: every file (x.c with x.h, one unit) sits in one layer;
a unit may include units of lower layers, or of its own layer and group, never
one above; and the graph of units has no cycle. A new file must be given its
place in LAYERS below. Exit 1, naming each offending include, when the graph
breaks a rule. Run by scripts/test.sh."""
import os
import re
import sys

# (layer, group): units, bottom to top. Groups split a layer into parts that
# must not include each other (the transport knows nothing of the store).
LAYERS = [
    ((0, "base"), "err buf utf8 log ids addrs evloop"),
    ((1, "codec"), "json http ws sio conn_info lua_pattern lua_meter tls"),
    ((2, "store"), "rooms"),
    ((2, "transport"), "conn"),
    ((2, "cluster"), "redis_link"),
    ((2, "webhook"), "webhook"),
    ((3, "policy"), "lua_vm lua_api lua_verify lua_conv builtin policy"),
    ((4, "event"), "peer proto relay"),
    ((5, "session"), "admit resume ws_peer eio web cluster cluster_lua"),
    ((6, "routing"), "routes metrics admin admin_page"),
    ((7, "server"), "server policy_test"),
    ((8, "main"), "main"),
]


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core")
    place = {}
    for where, units in LAYERS:
        for u in units.split():
            place[u] = where
    includes = {}
    for name in sorted(os.listdir(root)):
        stem, ext = os.path.splitext(name)
        if ext not in (".c", ".h"):
            continue
        with open(os.path.join(root, name), encoding="utf-8") as f:
            for line in f:
                m = re.match(r'\s*#\s*include\s+"([^"]+)\.h"', line)
                if m and m.group(1) != stem:
                    includes.setdefault(stem, set()).add((m.group(1), name))
        includes.setdefault(stem, set())
    bad = []
    for unit in sorted(includes):
        if unit not in place:
            bad.append(f"core/{unit}.*: not placed in a layer (scripts/check_layers.py LAYERS)")
    for unit, deps in sorted(includes.items()):
        for dep, via in sorted(deps):
            if unit not in place or dep not in place:
                continue
            (lu, gu), (ld, gd) = place[unit], place[dep]
            if ld > lu:
                bad.append(f"core/{via} includes {dep}.h: layer {ld} ({gd}) is above layer {lu} ({gu})")
            elif ld == lu and gd != gu:
                bad.append(f"core/{via} includes {dep}.h: {gd} and {gu} share layer {lu} but must not include each other")
    # cycles among units (depth-first search, colours)
    colour, stack = {}, []

    def visit(u):
        colour[u] = 1
        stack.append(u)
        for dep, _ in sorted(includes.get(u, ())):
            if dep not in includes:
                continue
            if colour.get(dep) == 1:
                bad.append("include cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            elif not colour.get(dep):
                visit(dep)
        stack.pop()
        colour[u] = 2

    for u in sorted(includes):
        if not colour.get(u):
            visit(u)
    if bad:
        print("check_layers: the include graph breaks the layering:", file=sys.stderr)
        for b in bad:
            print("  " + b, file=sys.stderr)
        return 1
    n = sum(len(d) for d in includes.values())
    print(f"check_layers: {len(includes)} units, {n} includes, no cycle, nothing includes a layer above it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
