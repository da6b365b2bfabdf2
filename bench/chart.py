#!/usr/bin/env python3
"""Draws the transport bench table (markdown, from transport-bench.sh) as a grouped bar chart in SVG.

    bench/chart.py RESULTS.md OUT.svg

One group per (iodepth, jobs) case, one bar per variant: read+write MiB/s. No dependencies.
"""
import sys

rows = []
for line in open(sys.argv[1], encoding="utf-8"):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) >= 6 and cells[0].isdigit() and cells[1].isdigit() and not cells[2][0].isdigit():
        rows.append((f"QD {cells[0]} × {cells[1]} job{'s' if cells[1] != '1' else ''}", cells[2],
                     float(cells[3]) + float(cells[4])))

cases = list(dict.fromkeys(r[0] for r in rows))
variants = list(dict.fromkeys(r[1] for r in rows))
value = {(c, v): t for c, v, t in rows}
colors = ["#9e9e9e", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]
W, H, left, bottom, top = 900, 420, 70, 60, 40
plot_h = H - bottom - top
vmax = max(value.values())
group_w = (W - left - 20) / len(cases)
bar_w = group_w * 0.8 / len(variants)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">randrw 70/30 4 KiB O_DIRECT, 1 GiB image on /dev/shm: read+write MiB/s</text>']
for i in range(6):
    v = vmax * i / 5
    y = top + plot_h - plot_h * v / vmax
    out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{W-20}" y2="{y:.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{left-6}" y="{y+4:.1f}" text-anchor="end">{v:.0f}</text>')
for ci, c in enumerate(cases):
    x0 = left + ci * group_w + group_w * 0.1
    for vi, v in enumerate(variants):
        t = value.get((c, v), 0)
        h = plot_h * t / vmax
        x = x0 + vi * bar_w
        out.append(f'<rect x="{x:.1f}" y="{top+plot_h-h:.1f}" width="{bar_w-2:.1f}" height="{h:.1f}" fill="{colors[vi % len(colors)]}"/>')
        out.append(f'<text x="{x+bar_w/2-1:.1f}" y="{top+plot_h-h-3:.1f}" text-anchor="middle" font-size="10">{t:.0f}</text>')
    out.append(f'<text x="{x0+group_w*0.4:.1f}" y="{H-bottom+18}" text-anchor="middle">{c}</text>')
for vi, v in enumerate(variants):
    x = left + vi * 190
    out.append(f'<rect x="{x}" y="{H-22}" width="12" height="12" fill="{colors[vi % len(colors)]}"/>')
    out.append(f'<text x="{x+16}" y="{H-12}">{v}</text>')
out.append("</svg>")
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(out) + "\n")
