"""Report charts: small inline SVG drawings (bars, grouped bars, columns, a line, a graph),
each mark with a <title> so hovering shows the exact value. No JavaScript, nothing fetched."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from graphgen.stages.report.data import GraphLink, GraphNode

_E = html.escape


_PALETTE = ["#F79767", "#57C7E3", "#8DCC93", "#C990C0", "#DA7194", "#D9C8AE"]


def _fmt(v: float) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.3g}" if abs(v) < 1 else f"{v:,.2f}"
    return f"{int(v):,}"


def svg_bars(items: Sequence[tuple[str, float]], *, title: str, color: str = _PALETTE[0],
             percent: bool = False, width: int = 560) -> str:
    """Horizontal bars, one row per item, labelled, with hover titles."""
    row, label_w, pad = 22, 190, 60
    height = row * len(items) + 10
    top = max((v for _, v in items), default=0) or 1
    out = [f'<svg class="chart bars" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">']
    for i, (label, v) in enumerate(items):
        y = 5 + i * row
        w = max(1.0, (width - label_w - pad) * v / top)
        text = f"{v:.1%}" if percent else _fmt(v)
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="lbl">{_E(_clip(label))}</text>'
                   f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{color}">'
                   f'<title>{_E(label)}: {text}</title></rect>'
                   f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" class="val">{text}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_grouped(labels: Sequence[str], series: dict[str, Sequence[float]], *, title: str,
                percent: bool = False, width: int = 560) -> str:
    """Horizontal grouped bars (one group per label, one bar per series) with a legend."""
    names = list(series)
    bar, gap, label_w, pad = 10, 8, 190, 60
    group = bar * len(names) + gap
    height = group * len(labels) + 28
    top = max((v for vs in series.values() for v in vs), default=0) or 1
    out = [f'<svg class="chart grouped" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">']
    for k, name in enumerate(names):
        out.append(f'<rect x="{label_w + k * 150}" y="4" width="12" height="12" fill="{_PALETTE[k % 6]}"/>'
                   f'<text x="{label_w + k * 150 + 16}" y="14" class="lbl">{_E(name)}</text>')
    for i, label in enumerate(labels):
        y = 24 + i * group
        out.append(f'<text x="{label_w - 6}" y="{y + group / 2}" text-anchor="end" class="lbl">{_E(_clip(label))}</text>')
        for k, name in enumerate(names):
            v = series[name][i]
            w = max(1.0, (width - label_w - pad) * v / top)
            text = f"{v:.1%}" if percent else _fmt(v)
            out.append(f'<rect x="{label_w}" y="{y + k * bar}" width="{w:.1f}" height="{bar - 1}" fill="{_PALETTE[k % 6]}">'
                       f'<title>{_E(label)} ({_E(name)}): {text}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def svg_columns(items: Sequence[tuple[str, float]], *, title: str, color: str = _PALETTE[1],
                width: int = 560, height: int = 220) -> str:
    """Vertical columns (histograms), labels under the axis."""
    n = max(1, len(items))
    left, bottom, top_pad = 40, 30, 16
    slot = (width - left - 10) / n
    top = max((v for _, v in items), default=0) or 1
    plot_h = height - bottom - top_pad
    out = [f'<svg class="chart columns" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" class="axis"/>']
    for i, (label, v) in enumerate(items):
        h = max(1.0, plot_h * v / top)
        x = left + i * slot + slot * 0.15
        out.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{color}">'
                   f'<title>{_E(label)}: {_fmt(v)}</title></rect>'
                   f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom - h - 3:.1f}" text-anchor="middle" class="val">{_fmt(v)}</text>'
                   f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 14}" text-anchor="middle" class="lbl">{_E(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_line(points: Sequence[tuple[float, float]], *, title: str, x_label: str, y_label: str,
             y_max: float, width: int = 560, height: int = 240) -> str:
    left, bottom, top_pad, right = 50, 36, 12, 16
    x_max = max((x for x, _ in points), default=1) or 1
    sx = lambda x: left + (width - left - right) * x / x_max  # noqa: E731
    sy = lambda y: height - bottom - (height - bottom - top_pad) * y / (y_max or 1)  # noqa: E731
    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate([(0, 0), *points]))
    out = [f'<svg class="chart line" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" class="axis"/>',
           f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{height - bottom}" class="axis"/>']
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        y = sy(y_max * frac)
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="val">{frac:.0%}</text>'
                   f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>')
    out.append(f'<text x="{width - right}" y="{height - 6}" text-anchor="end" class="lbl">{_E(x_label)} '
               f'(up to {_fmt(x_max)})</text>'
               f'<path d="{path}" fill="none" stroke="{_PALETTE[2]}" stroke-width="2.5"/>')
    for x, y in points[:: max(1, len(points) // 12)] + list(points[-1:]):
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{_PALETTE[2]}">'
                   f'<title>{_fmt(x)} {_E(x_label)}: {_fmt(y)} {_E(y_label)} ({y / (y_max or 1):.1%})</title></circle>')
    out.append("</svg>")
    return "".join(out)


def svg_graph(nodes: Sequence[GraphNode], links: Sequence[GraphLink], *, title: str,
              width: int = 1100, height: int = 700) -> str:
    """Topics as circles (area ~ frequency) at their spring-layout positions, edges by count."""
    if not nodes:
        return ""
    pad = 70
    xs, ys = [n.x for n in nodes], [n.y for n in nodes]
    span_x, span_y = (max(xs) - min(xs)) or 1, (max(ys) - min(ys)) or 1
    at = {n.id: (pad + (width - 2 * pad) * (n.x - min(xs)) / span_x,
                 pad + (height - 2 * pad) * (n.y - min(ys)) / span_y) for n in nodes}
    top_f = max(n.frequency for n in nodes) or 1
    top_c = max((e.count for e in links), default=1) or 1
    name = {n.id: n.name for n in nodes}
    out = [f'<svg class="chart graph" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">']
    for e in links:
        (x1, y1), (x2, y2) = at[e.source], at[e.target]
        out.append(f'<line class="edge" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                   f'stroke-width="{0.8 + 5 * e.count / top_c:.2f}">'
                   f'<title>{_E(name[e.source])} - {_E(name[e.target])}: {e.count} seeds, weight {e.weight:.3f}</title></line>')
    for n in sorted(nodes, key=lambda n: -n.frequency):
        x, y = at[n.id]
        r = 5 + 22 * math.sqrt(n.frequency / top_f)
        out.append(f'<circle class="node" cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}">'
                   f'<title>{_E(n.name)}: {n.frequency} seeds</title></circle>'
                   f'<text x="{x:.1f}" y="{y + r + 11:.1f}" text-anchor="middle" class="lbl">{_E(_clip(n.name, 28))}</text>')
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
