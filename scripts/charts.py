#!/usr/bin/env python3
"""Draws the README's performance charts as SVG from benchmark JSON outputs. Standard library only.

    python3 scripts/charts.py graph500 docs/bench/graph500-s*.json --out docs/img

`graph500` reads the `--json` files of `cargo run --release --example graph500` (one per scale) and
writes docs/img/graph500-ratios.svg (emds time over in-memory time, BFS and PageRank, per scale)
and docs/img/graph500-rates.svg (TEPS and PageRank edges per second, emds beside in-memory).
`graph500-table` prints the README's Markdown table from the same files.
`bar_chart` is generic: other benchmarks can add a subcommand that feeds it their ratio tables.
"""

import argparse
import json
import math
import os
import sys

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_ceiling(x):
    """The smallest 1/2/2.5/5 x 10^k at or above x."""
    if x <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= x:
            return m * e
    return 10 * e


def bar_chart(title, groups, series, values, ylabel, refs=(), fmt="{:.2f}", width=720, height=380):
    """An SVG grouped bar chart. values[s][g] is the bar of series s in group g (None = missing).
    refs are (y, label) horizontal reference lines."""
    left, right, top, bottom = 70, 20, 50, 70
    pw, ph = width - left - right, height - top - bottom
    vmax = max([v for row in values for v in row if v is not None] + [r[0] for r in refs] + [1e-12])
    ymax = nice_ceiling(vmax * 1.1)
    y = lambda v: top + ph - ph * v / ymax
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{esc(title)}</text>',
    ]
    for i in range(6):
        v = ymax * i / 5
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{esc(fmt.format(v))}</text>')
    out.append(
        f'<text x="16" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 {top + ph / 2})">'
        f"{esc(ylabel)}</text>"
    )
    gw = pw / max(len(groups), 1)
    bw = gw * 0.8 / max(len(series), 1)
    for gi, g in enumerate(groups):
        gx = left + gi * gw + gw * 0.1
        for si, _ in enumerate(series):
            v = values[si][gi]
            if v is None:
                continue
            x = gx + si * bw
            out.append(
                f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bw * 0.92:.1f}" height="{top + ph - y(v):.1f}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"/>'
            )
            out.append(
                f'<text x="{x + bw * 0.46:.1f}" y="{y(v) - 4:.1f}" text-anchor="middle" font-size="11">'
                f"{esc(fmt.format(v))}</text>"
            )
        out.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{top + ph + 18}" text-anchor="middle">{esc(g)}</text>')
    for rv, label in refs:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(rv):.1f}" y2="{y(rv):.1f}" stroke="#555" stroke-dasharray="5,4"/>'
        )
        out.append(f'<text x="{left + pw - 4}" y="{y(rv) - 4:.1f}" text-anchor="end" fill="#555">{esc(label)}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="black"/>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="black"/>')
    lx = left
    for si, s in enumerate(series):
        out.append(f'<rect x="{lx}" y="{height - 26}" width="12" height="12" fill="{PALETTE[si % len(PALETTE)]}"/>')
        out.append(f'<text x="{lx + 16}" y="{height - 16}">{esc(s)}</text>')
        lx += 24 + 7 * len(s)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def graph500(paths, out_dir):
    runs = sorted((json.load(open(p)) for p in paths), key=lambda r: r["scale"])
    groups = [f"scale {r['scale']}" for r in runs]
    bfs = [r.get("bfs_ratio") for r in runs]
    pr = [r.get("pagerank_ratio") for r in runs]
    charts = {
        "graph500-ratios.svg": bar_chart(
            "Graph500 over emds: time relative to the same kernel on in-memory Vecs",
            groups,
            ["BFS (64 roots, TEPS harmonic mean)", "PageRank (per iteration)"],
            [bfs, pr],
            "emds time / in-memory time",
            refs=[(1.0, "in-memory"), (1.5, "target 1.5x")],
        ),
        "graph500-rates.svg": bar_chart(
            "Graph500: edges per second (millions)",
            groups,
            ["BFS TEPS emds", "BFS TEPS in-memory", "PageRank emds", "PageRank in-memory"],
            [
                [r["bfs_emds"]["teps_hmean"] / 1e6 for r in runs],
                [r["bfs_mem"]["teps_hmean"] / 1e6 if "bfs_mem" in r else None for r in runs],
                [r["csr_entries"] / r["pagerank_emds"]["mean_s_per_iter"] / 1e6 for r in runs],
                [
                    r["csr_entries"] / r["pagerank_mem"]["mean_s_per_iter"] / 1e6 if "pagerank_mem" in r else None
                    for r in runs
                ],
            ],
            "million edges per second",
            fmt="{:.0f}",
        ),
    }
    os.makedirs(out_dir, exist_ok=True)
    for name, svg in charts.items():
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(svg)
        print(os.path.join(out_dir, name))


def mib(b):
    return f"{b / 1048576:,.0f} MiB" if b < 10 * 1073741824 else f"{b / 1073741824:,.1f} GiB"


def graph500_table(paths):
    """The README's Graph500 table, in Markdown, from the JSON outputs."""
    runs = sorted((json.load(open(p)) for p in paths), key=lambda r: r["scale"])
    rows = [
        "| scale | edges | on disk | build (CPU) | BFS TEPS emds / in-memory | BFS ratio | "
        "PageRank s/iter emds / in-memory | PageRank ratio | cold neighbour query median / p99 | "
        "peak RSS walk (anonymous) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        b = r.get("build")
        build = f"{b['wall_s']:.1f} s ({b['cpu_s']:.1f} s)" if b else "reopened"
        be = r.get("bfs_emds_paired", r["bfs_emds"])
        bm = r.get("bfs_mem")
        pe = r.get("pagerank_emds_paired", r["pagerank_emds"])
        pm = r.get("pagerank_mem")
        q = r.get("neighbour_queries")
        def ratio(k):
            if k not in r:
                return "n/a"
            med = r.get(k + "_median")
            return f"{r[k]:.2f}x" + (f" ({med:.2f}x)" if med is not None else "")
        rows.append(
            "| {} | {:,} | {} | {} | {:.0f} M / {} | {} | {:.3f} / {} | {} | {} | {} ({}) |".format(
                r["scale"],
                r["edges"],
                mib(r["disk_bytes"]),
                build,
                be["teps_hmean"] / 1e6,
                f"{bm['teps_hmean'] / 1e6:.0f} M" if bm else "n/a",
                ratio("bfs_ratio"),
                pe["mean_s_per_iter"],
                f"{pm['mean_s_per_iter']:.3f}" if pm else "n/a",
                ratio("pagerank_ratio"),
                f"{q['cold_median_us']:.1f} us / {q['cold_p99_us']:,.0f} us" if q else "n/a",
                mib(r["walk_peak_rss_bytes"]),
                mib(r["walk_anon_rss_bytes"]),
            )
        )
    print("\n".join(rows))
    print()
    rows = [
        "| scale | build wall | CPU (all threads) | main thread waiting for a CPU | main thread blocked | "
        "store written at | disk write (dd + fsync) | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        b = r.get("build")
        if not b:
            continue
        bw = b.get("disk_write_bw_bytes_per_s")
        rows.append(
            "| {} | {:.1f} s | {:.1f} s | {} | {} | {:.0f} MiB/s | {} | {} |".format(
                r["scale"],
                b["wall_s"],
                b["cpu_s"],
                f"{b['main_thread_cpu_wait_s']:.1f} s" if "main_thread_cpu_wait_s" in b else "not measured",
                f"{b['main_thread_blocked_s']:.1f} s" if "main_thread_blocked_s" in b else "not measured",
                b["store_write_bytes_per_s"] / 1048576,
                f"{bw / 1048576:.0f} MiB/s" if bw else "n/a",
                b["bound"],
            )
        )
    print("\n".join(rows))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["graph500", "graph500-table"])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", default="docs/img")
    a = ap.parse_args(argv)
    if a.kind == "graph500":
        graph500(a.inputs, a.out)
    elif a.kind == "graph500-table":
        graph500_table(a.inputs)


if __name__ == "__main__":
    main(sys.argv[1:])
