#!/usr/bin/env python3
"""scripts/soak-plot.py [CSV [SVG]] - draw the server's RSS (MB, left axis) and
open fds (right axis) over time from the CSV of scripts/soak.sh (default
build-soak/soak.csv) as a hand-written SVG (default docs/soak.svg). Python's
standard library only. The samples tagged warmup and end (the two RSS values
the pass criterion compares) are marked with dashed vertical lines."""
import csv
import math
import sys

W, H = 860, 420
ML, MR, MT, MB = 70, 80, 40, 60          # margins: left, right, top, bottom
RSS_COLOR, FD_COLOR = "#1f6fb4", "#d9661f"


def nice_ticks(lo, hi, n=6):
    """Round tick values covering [lo, hi]: (ticks, new_lo, new_hi)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    lo = math.floor(lo / step) * step
    hi = math.ceil(hi / step) * step
    ticks, v = [], lo
    while v <= hi + step / 1e6:
        ticks.append(v)
        v += step
    return ticks, lo, hi


def fmt(v):
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}"


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "build-soak/soak.csv"
    dst = sys.argv[2] if len(sys.argv) > 2 else "docs/soak.svg"
    rows = []
    with open(src, newline="") as f:
        for r in csv.DictReader(f):
            if r.get("rss_kb") and r.get("fds"):
                rows.append((float(r["seconds"]), float(r["rss_kb"]) / 1024, float(r["fds"]), r.get("phase", "")))
    if len(rows) < 2:
        sys.exit(f"soak-plot: fewer than two samples in {src}")
    t_max = max(r[0] for r in rows)
    minutes = t_max > 300
    tscale = 60 if minutes else 1
    xt, x0, x1 = nice_ticks(0, t_max / tscale)
    rt, r0, r1 = nice_ticks(0, max(r[1] for r in rows) * 1.05)
    ft, f0, f1 = nice_ticks(0, max(r[2] for r in rows) * 1.05)
    pw, ph = W - ML - MR, H - MT - MB

    def X(t):
        return ML + (t / tscale - x0) / (x1 - x0) * pw

    def Y(v, lo, hi):
        return MT + ph - (v - lo) / (hi - lo) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="Liberation Sans, Arial, sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">Parley soak: server RSS and open file descriptors</text>']
    # grid and axes
    for v in xt:
        x = X(v * tscale)
        o.append(f'<line x1="{x:.1f}" y1="{MT}" x2="{x:.1f}" y2="{MT + ph}" stroke="#e6e6e6"/>')
        o.append(f'<line x1="{x:.1f}" y1="{MT + ph}" x2="{x:.1f}" y2="{MT + ph + 5}" stroke="black"/>')
        o.append(f'<text x="{x:.1f}" y="{MT + ph + 18}" text-anchor="middle">{fmt(v)}</text>')
    for v in rt:
        y = Y(v, r0, r1)
        o.append(f'<line x1="{ML}" y1="{y:.1f}" x2="{ML + pw}" y2="{y:.1f}" stroke="#e6e6e6"/>')
        o.append(f'<line x1="{ML - 5}" y1="{y:.1f}" x2="{ML}" y2="{y:.1f}" stroke="black"/>')
        o.append(f'<text x="{ML - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{RSS_COLOR}">{fmt(v)}</text>')
    for v in ft:
        y = Y(v, f0, f1)
        o.append(f'<line x1="{ML + pw}" y1="{y:.1f}" x2="{ML + pw + 5}" y2="{y:.1f}" stroke="black"/>')
        o.append(f'<text x="{ML + pw + 8}" y="{y + 4:.1f}" fill="{FD_COLOR}">{fmt(v)}</text>')
    o.append(f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
    o.append(f'<text x="{ML + pw / 2}" y="{H - 18}" text-anchor="middle">time since the server started '
             f'({"min" if minutes else "s"})</text>')
    o.append(f'<text transform="translate(18 {MT + ph / 2}) rotate(-90)" text-anchor="middle" fill="{RSS_COLOR}">RSS (MB)</text>')
    o.append(f'<text transform="translate({W - 16} {MT + ph / 2}) rotate(90)" text-anchor="middle" fill="{FD_COLOR}">open fds</text>')
    # warm-up and end markers
    for t, _, _, phase in rows:
        if phase in ("warmup", "end"):
            x = X(t)
            o.append(f'<line x1="{x:.1f}" y1="{MT}" x2="{x:.1f}" y2="{MT + ph}" stroke="#555" stroke-dasharray="4 3"/>')
            o.append(f'<text x="{x + 3:.1f}" y="{MT + 12}" fill="#555">{"warm-up" if phase == "warmup" else "end"}</text>')
    # the two lines
    for idx, lo, hi, color in ((1, r0, r1, RSS_COLOR), (2, f0, f1, FD_COLOR)):
        pts = " ".join(f"{X(r[0]):.1f},{Y(r[idx], lo, hi):.1f}" for r in rows)
        o.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
    # legend
    lx, ly = ML + 12, MT + ph - 44
    o.append(f'<rect x="{lx - 6}" y="{ly - 14}" width="150" height="44" fill="white" stroke="#999"/>')
    for i, (label, color) in enumerate((("RSS (MB, left)", RSS_COLOR), ("open fds (right)", FD_COLOR))):
        y = ly + i * 18
        o.append(f'<line x1="{lx}" y1="{y - 4}" x2="{lx + 24}" y2="{y - 4}" stroke="{color}" stroke-width="2"/>')
        o.append(f'<text x="{lx + 30}" y="{y}">{label}</text>')
    o.append("</svg>")
    with open(dst, "w") as f:
        f.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
