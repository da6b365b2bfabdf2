#!/usr/bin/env python3
"""Draws the transport bench table (markdown, from transport-bench.sh) as two grouped bar charts in SVG.

    bench/chart.py RESULTS.md OUT.svg [TITLE]

Top: read+write MiB/s; bottom: p99 completion latency (the larger of read and write), log scale.
One group per (iodepth, jobs) case, one bar per variant. No dependencies.
"""
import math
import sys

rows = []
for line in open(sys.argv[1], encoding="utf-8"):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) >= 8 and cells[0].isdigit() and cells[1].isdigit() and not cells[2][0].isdigit():
        rows.append((f"QD {cells[0]} × {cells[1]} job{'s' if cells[1] != '1' else ''}", cells[2],
                     float(cells[3]) + float(cells[4]), max(float(cells[6]), float(cells[7]), 1.0)))
title = sys.argv[3] if len(sys.argv) > 3 else "randrw 70/30 4 KiB O_DIRECT, 1 GiB raw image"
cases = list(dict.fromkeys(r[0] for r in rows))
variants = list(dict.fromkeys(r[1] for r in rows))
mibs = {(c, v): t for c, v, t, _ in rows}
p99 = {(c, v): p for c, v, _, p in rows}
colors = ["#9e9e9e", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]
W, panel_h, left, gap, top = 960, 300, 70, 70, 40
H = top + 2 * panel_h + gap + 50
group_w = (W - left - 20) / len(cases)
bar_w = group_w * 0.8 / len(variants)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">{title}</text>']


def panel(y0, values, label, log):
    vmax = max(values.values())
    scale = (lambda v: math.log10(max(v, 1)) / math.log10(max(vmax, 10))) if log else (lambda v: v / vmax)
    out.append(f'<text x="14" y="{y0 + panel_h / 2}" transform="rotate(-90 14 {y0 + panel_h / 2})" '
               f'text-anchor="middle">{label}</text>')
    ticks = [10 ** k for k in range(0, int(math.log10(max(vmax, 10))) + 1)] if log else [vmax * i / 5 for i in range(6)]
    for v in ticks:
        y = y0 + panel_h - panel_h * scale(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{W-20}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left-6}" y="{y+4:.1f}" text-anchor="end">{v:.0f}</text>')
    for ci, c in enumerate(cases):
        x0 = left + ci * group_w + group_w * 0.1
        for vi, v in enumerate(variants):
            t = values.get((c, v), 0)
            h = panel_h * scale(t)
            x = x0 + vi * bar_w
            out.append(f'<rect x="{x:.1f}" y="{y0+panel_h-h:.1f}" width="{bar_w-2:.1f}" height="{h:.1f}" '
                       f'fill="{colors[vi % len(colors)]}"/>')
            out.append(f'<text x="{x+bar_w/2-1:.1f}" y="{y0+panel_h-h-3:.1f}" text-anchor="middle" font-size="9">{t:.0f}</text>')
        out.append(f'<text x="{x0+group_w*0.4:.1f}" y="{y0+panel_h+16}" text-anchor="middle">{c}</text>')


panel(top, mibs, "read+write MiB/s", False)
panel(top + panel_h + gap, p99, "p99 latency µs (log)", True)
for vi, v in enumerate(variants):
    x = left + vi * 160
    out.append(f'<rect x="{x}" y="{H-22}" width="12" height="12" fill="{colors[vi % len(colors)]}"/>')
    out.append(f'<text x="{x+16}" y="{H-12}">{v}</text>')
out.append("</svg>")
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(out) + "\n")
