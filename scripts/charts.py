#!/usr/bin/env python3
"""Draws the README's performance charts as SVG from benchmark JSON outputs. Standard library only.

    python3 scripts/charts.py graph500 docs/bench/graph500-s*.json --out docs/img

`graph500` reads the `--json` files of `cargo run --release --example graph500` (one per scale) and
writes docs/img/graph500-ratios.svg (emds time over in-memory time, BFS and PageRank, per scale)
and docs/img/graph500-rates.svg (TEPS and PageRank edges per second, emds beside in-memory).
`graph500-table` prints the README's Markdown table from the same files.
`graph500-build` draws docs/img/graph500-build.svg from build outputs (walk runs or `--build-only`
runs): CPU seconds per GiB of store over the cores beside the disk's seconds per GiB;
`graph500-build-table` prints the build table alone.
`dict` and `list` read the `--json` outputs of benches/compare (`dict --workload u64`, `list`):
one or more runs each, the median ratio over the runs is drawn. `dict` writes docs/img/dict-ratios.svg
(emds over LMDB, redb and HashMap per phase); `list` writes docs/img/list-ratios.svg (EmList over
LMDB and Vec, EmVec over Vec, per phase). `dict-table` and `list-table` print the ratios per run;
`metrics-table` prints every metric's median per engine (the README's tables) from any benches/compare JSON runs.

    python3 scripts/charts.py dict docs/bench/dict-u64-*.json --out docs/img
    python3 scripts/charts.py list docs/bench/list-100m-*.json --out docs/img

scripts/bench-charts.sh reruns those benchmarks (3 runs each) and redraws both charts in one step.

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


def close_with_legend(out, series, left, height):
    """Appends the series' colour legend along the bottom edge and closes the SVG."""
    lx = left
    for si, s in enumerate(series):
        out.append(f'<rect x="{lx}" y="{height - 26}" width="12" height="12" fill="{PALETTE[si % len(PALETTE)]}"/>')
        out.append(f'<text x="{lx + 16}" y="{height - 16}">{esc(s)}</text>')
        lx += 24 + 7 * len(s)
    out.append("</svg>")
    return "\n".join(out) + "\n"


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
        out.append(f'<text x="{left + 4}" y="{y(rv) - 4:.1f}" text-anchor="start" fill="#555">{esc(label)}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="black"/>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="black"/>')
    return close_with_legend(out, series, left, height)


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
            "Graph500: edges per second (millions), emds and in-memory runs alternating",
            groups,
            ["BFS TEPS emds", "BFS TEPS in-memory", "PageRank emds", "PageRank in-memory"],
            [
                [r.get("bfs_emds_paired", r["bfs_emds"])["teps_hmean"] / 1e6 for r in runs],
                [r["bfs_mem"]["teps_hmean"] / 1e6 if "bfs_mem" in r else None for r in runs],
                [
                    r["csr_entries"] / r.get("pagerank_emds_paired", r["pagerank_emds"])["mean_s_per_iter"] / 1e6
                    for r in runs
                ],
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
    for r in runs:
        # Older outputs lack the median per-root BFS ratio: compute it from the per-root times.
        if "bfs_ratio_median" not in r and "bfs_emds_paired" in r and "bfs_mem" in r:
            e = r["bfs_emds_paired"]["root_seconds_edges_reached"]
            m = r["bfs_mem"]["root_seconds_edges_reached"]
            ratios = sorted(a[1] / b[1] for a, b in zip(e, m))
            r["bfs_ratio_median"] = ratios[round((len(ratios) - 1) * 0.5)]
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


def cores_of(r):
    """The machine's cores, from the JSON (newer outputs) or its machine line ("..., 2 cores, ...")."""
    b = r.get("build", {})
    if "cores" in b:
        return int(b["cores"])
    for part in r.get("machine", "").split(","):
        if part.strip().endswith(" cores"):
            return int(part.split()[0])
    return 1


def build_needs(r):
    """(CPU seconds over the cores, disk seconds at the probe's bandwidth): what bounds the build if
    it has the machine to itself. The disk takes the store or what the process wrote, if more."""
    b = r["build"]
    bw = b.get("disk_write_bw_bytes_per_s")
    if not bw:
        return None
    written = max(r["disk_bytes"], b.get("io_written_bytes", 0))
    return b["cpu_s"] / cores_of(r), written / bw


def build_verdict(r):
    """The capacity verdict of examples/graph500/report.rs, recomputed so that old outputs (whose
    `bound` came from the run's wall-time shares) read the same way as new ones."""
    need = build_needs(r)
    if need is None:
        return "disk not probed"
    cpu, disk = need
    return "bounded by the disk" if disk >= cpu else "bounded by the CPU"


def build_label(r):
    return r["build"].get("build_method", "v1")


def build_runs(paths):
    runs = [json.load(open(p)) for p in paths]
    runs = [r for r in runs if r.get("build")]
    return sorted(runs, key=lambda r: (r["scale"], build_label(r)))


def build_table(paths):
    """The build table: per run, its CPU per GiB beside the disk's seconds per GiB, and the verdict."""
    rows = [
        "| scale | build code | store | build wall | CPU (all threads) | CPU per GiB | disk write (dd + fsync) | "
        "CPU over cores / disk time | CPU keeps up with a disk of | main thread waiting for a CPU / blocked | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in build_runs(paths):
        b = r["build"]
        gib = r["disk_bytes"] / 2**30
        bw = b.get("disk_write_bw_bytes_per_s")
        need = build_needs(r)
        rows.append(
            "| {} | {} | {:.2f} GiB | {:.1f} s | {:.1f} s | {:.1f} s | {} | {} | {:.0f} MiB/s | {} | {} |".format(
                r["scale"],
                build_label(r),
                gib,
                b["wall_s"],
                b["cpu_s"],
                b["cpu_s"] / gib,
                f"{bw / 1048576:.0f} MiB/s ({2**30 / bw:.1f} s per GiB)" if bw else "n/a",
                f"{need[0]:.1f} s / {need[1]:.1f} s" if need else "n/a",
                r["disk_bytes"] / 1048576 / (b["cpu_s"] / cores_of(r)),
                "{} / {}".format(
                    f"{b['main_thread_cpu_wait_s']:.1f} s" if "main_thread_cpu_wait_s" in b else "not measured",
                    f"{b['main_thread_blocked_s']:.1f} s" if "main_thread_blocked_s" in b else "not measured",
                ),
                build_verdict(r),
            )
        )
    print("\n".join(rows))


def graph500_build(paths, out):
    """docs/img/graph500-build.svg: CPU seconds per GiB over the cores, per build code (the mean of
    repeated runs), beside the disk's seconds per GiB (the median probe of the scale's runs): a bar
    above the disk's means the build is bounded by the CPU."""
    runs = build_runs(paths)
    scales = sorted({r["scale"] for r in runs})
    labels = sorted({build_label(r) for r in runs})
    groups = [f"scale {s}" for s in scales]
    series, values = [], []
    for lab in labels:
        series.append(f"CPU s per GiB / cores ({lab})")
        row = []
        for s in scales:
            rs = [r for r in runs if r["scale"] == s and build_label(r) == lab]
            per = sorted(r["build"]["cpu_s"] / cores_of(r) / (r["disk_bytes"] / 2**30) for r in rs)
            row.append(sum(per) / len(per) if per else None)
        values.append(row)
    series.append("disk s per GiB (dd + fsync probe)")
    row = []
    for s in scales:
        bws = [r["build"]["disk_write_bw_bytes_per_s"] for r in runs if r["scale"] == s and r["build"].get("disk_write_bw_bytes_per_s")]
        row.append(2**30 / sorted(bws)[len(bws) // 2] if bws else None)
    values.append(row)
    probes = sorted(r["build"]["disk_write_bw_bytes_per_s"] for r in runs if r["build"].get("disk_write_bw_bytes_per_s"))
    refs = [(2**30 / probes[len(probes) // 2], f"disk at the median probe, {probes[len(probes) // 2] / 1048576:.0f} MiB/s")] if probes else []
    svg = bar_chart(
        "Graph500 build: CPU s per GiB over the cores vs disk s per GiB",
        groups,
        series,
        values,
        "seconds per GiB of store",
        refs=refs,
    )
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "graph500-build.svg")
    with open(path, "w") as f:
        f.write(svg)
    print(path)


def ratio_chart(title, subtitle, groups, series, values, refs=(), width=900, height=420):
    """An SVG grouped bar chart of ratios on a log scale: each bar grows from 1x, up when the
    ratio is above 1 (faster), down when below. values[s][g] is a ratio or None.
    refs are (ratio, label) dashed reference lines."""
    left, right, top, bottom = 60, 20, 62, 78
    pw, ph = width - left - right, height - top - bottom
    vals = [v for row in values for v in row if v] + [r[0] for r in refs] + [1.0]
    lo = 10 ** math.floor(math.log10(min(vals)) - 1e-9)
    hi = 10 ** math.ceil(math.log10(max(vals)) + 1e-9)
    y = lambda v: top + ph - ph * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{esc(title)}</text>',
        f'<text x="{width / 2}" y="42" text-anchor="middle" fill="#444">{esc(subtitle)}</text>',
    ]
    decade = lo
    while decade <= hi * 1.0001:
        for m in (1, 2, 5):
            v = decade * m
            if v > hi * 1.0001:
                break
            dark = m == 1
            out.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                f'stroke="{"#ccc" if dark else "#eee"}"/>'
            )
            out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}x</text>')
        decade *= 10
    out.append(
        f'<text x="14" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 {top + ph / 2})">'
        "rate ratio, log scale (above 1x: emds faster)</text>"
    )
    gw = pw / max(len(groups), 1)
    bw = gw * 0.8 / max(len(series), 1)
    for gi, g in enumerate(groups):
        gx = left + gi * gw + gw * 0.1
        for si in range(len(series)):
            v = values[si][gi]
            if not v:
                continue
            x = gx + si * bw
            y0, y1 = sorted((y(1.0), y(v)))
            out.append(
                f'<rect x="{x:.1f}" y="{y0:.1f}" width="{bw * 0.92:.1f}" height="{max(y1 - y0, 1):.1f}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"/>'
            )
            ty = y(v) - 4 if v >= 1 else y(v) + 13
            label = f"{v:.2f}x" if v < 10 else f"{v:.1f}x"
            out.append(
                f'<text x="{x + bw * 0.46:.1f}" y="{ty:.1f}" text-anchor="middle" font-size="11">{esc(label)}</text>'
            )
        out.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{top + ph + 18}" text-anchor="middle">{esc(g)}</text>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(1.0):.1f}" y2="{y(1.0):.1f}" stroke="black"/>')
    for rv, label in refs:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(rv):.1f}" y2="{y(rv):.1f}" stroke="#c00" '
            f'stroke-dasharray="5,4"/>'
        )
        out.append(f'<text x="{left + pw - 4}" y="{y(rv) - 4:.1f}" text-anchor="end" fill="#c00">{esc(label)}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="black"/>')
    return close_with_legend(out, series, left, height)


def compare_runs(paths):
    """The benches/compare JSON runs in `paths`, oldest first."""
    return sorted((json.load(open(p)) for p in paths), key=lambda r: r.get("unix_time", 0))


def metric(result, name):
    """The value of the metric `name` of one engine's result, or None."""
    for m in result["metrics"]:
        if m["name"] == name:
            return m["value"]
    return None


def engine(section, name):
    return next((r for r in section["results"] if r["engine"] == name), None)


def compare_ratios(runs, rows):
    """rows: (group label, section index, engine, metric, baseline engine). Returns per row the
    list of ratios engine/baseline over the runs (runs missing either side are skipped)."""
    out = []
    for _, si, eng, name, base in rows:
        vals = []
        for r in runs:
            if si >= len(r["sections"]):
                continue
            sec = r["sections"][si]
            a, b = engine(sec, eng), engine(sec, base)
            va, vb = (metric(a, name) if a else None), (metric(b, name) if b else None)
            if va is not None and vb:
                vals.append(va / vb)
        out.append(vals)
    return out


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


DICT_PHASES = [
    ("extend + commit", "bulk load + durable commit"),
    ("insert + commit", "load + durable commit"),
    ("get present", "get present"),
    ("get absent", "get absent"),
    ("iterate", "iterate"),
    ("remove half", "remove half + durable commit"),
    ("cold get", "get cold (after cache drop)"),
]
DICT_BASES = ["LMDB", "redb", "HashMap"]


def dict_rows():
    return [(label, 0, "emds", name, base) for base in DICT_BASES for label, name in DICT_PHASES]


def compare_label(runs):
    """Which runs a chart shows: count, n, machine."""
    r = runs[-1]
    m = r.get("machine", {})
    text = f"{len(runs)} run{'s' if len(runs) != 1 else ''}, n = {r['n']:,}, {m.get('cores', '?')} cores"
    loads = [x["machine"]["load_average"][0] for x in runs if "load_average" in x.get("machine", {})]
    return text + (f", load {min(loads):.1f}-{max(loads):.1f}" if loads else "")


def median_ratio_chart(paths, rows, labels, bases, title, command, refs):
    """A ratio chart of the medians over `paths` of `rows` (one group per label, one bar per base)."""
    runs = compare_runs(paths)
    ratios = compare_ratios(runs, rows)
    k = len(labels)
    values = [[median(ratios[bi * k + pi]) for pi in range(k)] for bi in range(len(bases))]
    return ratio_chart(
        title,
        f"{compare_label(runs)}; medians; cd benches/compare && cargo run --release -- {command} --json ...",
        labels,
        [f"emds / {b}" for b in bases],
        values,
        refs=refs,
    )


def dict_chart(paths, out):
    svg = median_ratio_chart(
        paths,
        dict_rows(),
        [label for label, _ in DICT_PHASES],
        DICT_BASES,
        "EmDict, random u64 -> u64: emds rate / other engine's rate",
        "dict",
        [(5.0, "target: gets and load 5x LMDB"), (0.5, "target: gets 0.5x HashMap")],
    )
    write_svg(out, "dict-ratios.svg", svg)


# (group label, section, engine, metric, baseline): section 0 holds the (u64, u64) pairs, 1 the edges.
LIST_ROWS = [
    ("EmList push + flush", 0, "EmList", "append + durable flush"),
    ("EmList scan", 0, "EmList", "scan"),
    ("EmList random get", 0, "EmList", "get random index"),
    ("EmVec extend + flush", 1, "EmVec", "append + durable flush"),
    ("EmVec scan (chunks)", 1, "EmVec", "scan"),
    ("EmVec random get", 1, "EmVec", "get random index"),
]
LIST_BASES = ["LMDB", "Vec"]


def list_rows():
    return [(label, si, eng, name, base) for base in LIST_BASES for label, si, eng, name in LIST_ROWS]


def list_chart(paths, out):
    svg = median_ratio_chart(
        paths,
        list_rows(),
        [label for label, *_ in LIST_ROWS],
        LIST_BASES,
        "EmList (u64, u64) and EmVec [u32; 2]: emds rate / baseline's rate",
        "list",
        [(10.0, "target: EmList push 10x LMDB"), (0.8, "target: EmVec scan 0.8x Vec")],
    )
    write_svg(out, "list-ratios.svg", svg)


def compare_table(paths, rows):
    """Prints a Markdown table of each row's ratio in every run, then the median."""
    runs = compare_runs(paths)
    ratios = compare_ratios(runs, rows)
    print("| phase | ratio | per run | median |")
    print("|---|---|---|---:|")
    for (label, _, eng, _, base), vals in zip(rows, ratios):
        if vals:
            per = " / ".join(f"{v:.2f}" for v in vals)
            print(f"| {label} | {eng} / {base} | {per} | {median(vals):.2f}x |")


def fmt_metric(unit, v):
    """A metric value as the README's tables print it."""
    if unit == "ops_per_sec":
        return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} k/s"
    if unit == "mib":
        return f"{v:.0f} MiB"
    if unit == "times":
        return f"{v:.2f}×"
    if unit == "millis":
        return f"{v:.1f} ms"
    if unit == "bytes_per_entry":
        return f"{v:.1f} B"
    if unit == "percent":
        return f"{v:.0f} %"
    return f"{v:.4g}"


def metrics_table(paths):
    """Prints a Markdown table per section: every metric's median over the runs, one column per
    engine (a dash where an engine does not report it), then the load averages of the runs."""
    runs = compare_runs(paths)
    for si, sec in enumerate(runs[-1]["sections"]):
        engines = [r["engine"] for r in sec["results"]]
        names = []
        for r in sec["results"]:
            for m in r["metrics"]:
                if (m["name"], m["unit"]) not in names:
                    names.append((m["name"], m["unit"]))
        print(f"\n{sec['title']}: medians of {len(runs)} run(s)\n")
        print("| metric | " + " | ".join(engines) + " |")
        print("|---|" + "---:|" * len(engines))
        for name, unit in names:
            cells = []
            for e in engines:
                vals = [v for r in runs if si < len(r["sections"])
                        for v in [metric(engine(r["sections"][si], e) or {"metrics": []}, name)] if v is not None]
                cells.append(fmt_metric(unit, median(vals)) if vals else "—")
            print(f"| {name} | " + " | ".join(cells) + " |")
    loads = [" / ".join(f"{x:.2f}" for x in r["machine"]["load_average"]) for r in runs]
    print("\nload average at the start of each run: " + "; ".join(loads))


def write_svg(out, name, svg):
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    with open(path, "w") as f:
        f.write(svg)
    print(path)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = ["graph500", "graph500-table", "graph500-build", "graph500-build-table"]
    ap.add_argument("kind", choices=kinds + ["dict", "dict-table", "list", "list-table", "metrics-table"])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", default="docs/img")
    a = ap.parse_args(argv)
    if a.kind == "graph500":
        graph500(a.inputs, a.out)
    elif a.kind == "graph500-table":
        graph500_table(a.inputs)
    elif a.kind == "graph500-build":
        graph500_build(a.inputs, a.out)
    elif a.kind == "graph500-build-table":
        build_table(a.inputs)
    elif a.kind == "dict":
        dict_chart(a.inputs, a.out)
    elif a.kind == "dict-table":
        compare_table(a.inputs, dict_rows())
    elif a.kind == "list":
        list_chart(a.inputs, a.out)
    elif a.kind == "list-table":
        compare_table(a.inputs, list_rows())
    elif a.kind == "metrics-table":
        metrics_table(a.inputs)


if __name__ == "__main__":
    main(sys.argv[1:])
