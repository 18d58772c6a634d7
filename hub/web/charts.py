"""Charts drawn on the server as inline SVG: no script, no network, readable by screen
readers (each chart is an image with a title and a description, and the page shows the
same figures as a table beside it).

Two shapes cover the dashboard: `bar_chart` (horizontal bars, optionally stacked, so long
labels such as MRA directions fit a phone screen) and `line_chart` (a value over time,
such as the age of a feed). Both scale to their container through the SVG `viewBox`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Colour-blind-safe palette (Okabe-Ito), dark enough against white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
WIDTH = 600
_ids = itertools.count(1)


@dataclass(frozen=True)
class Bar:
    label: str
    values: Mapping[str, float]
    #: A limit drawn across this bar (such as the feed's staleness threshold).
    mark: float | None = None


def human_duration(seconds: float | None) -> str:
    """A duration in the unit a person reads best: 40 s, 12 min, 3.5 h, 2.1 days."""
    if seconds is None:
        return "never synced"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.1f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)  # pragma: no cover - the loop always returns


def _frame(title: str, description: str, height: int, body: list[str], chart_id: str
           ) -> Markup:
    # Every piece of text in `body` and here was escaped where it was built.
    return Markup(  # noqa: S704
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(description)}</desc>'
        + "".join(body) + "</svg>")


def _legend(series: Sequence[str], y: int) -> list[str]:
    parts, x = [], 8
    for index, name in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 16}" y="{y}" class="chart-text">{escape(name)}</text>')
        x += 24 + 8 * len(name)
    return parts


def bar_chart(title: str, bars: Sequence[Bar], series: Sequence[str], *,
              description: str = "", unit: str = "",
              value_text: Callable[[float], str] | None = None,
              mark_label: str = "") -> Markup:
    """Horizontal bars, one per label, stacked by `series` (in that order).

    `value_text` writes a bar's total (default: the number and `unit`); a bar's `mark`
    is drawn as a dashed line across its row, named `mark_label` in the legend.
    """
    def text(value: float) -> str:
        return value_text(value) if value_text else f"{_fmt(value)}{unit}"

    chart_id = f"chart-{next(_ids)}"
    if not bars:
        return _frame(title, description or "no data yet", 40, [
            '<text x="8" y="24" class="chart-text">No data yet.</text>'], chart_id)
    label_w, row_h, top = 220, 26, 30 if len(series) > 1 else 8
    plot_w = WIDTH - label_w - 70
    marks = [b.mark for b in bars if b.mark is not None]
    top_value = _nice_max(max([sum(b.values.get(s, 0) for s in series) for b in bars]
                              + marks))
    legend = list(series) if len(series) > 1 else []
    body = _legend(legend, 18) if legend else []
    if marks:
        top = 30
        x0 = 24 + sum(24 + 8 * len(name) for name in legend)
        body.append(f'<line x1="{x0}" y1="14" x2="{x0 + 14}" y2="14" class="chart-threshold"/>'
                    f'<text x="{x0 + 18}" y="18" class="chart-text">'
                    f'{escape(mark_label)}</text>')
    for row, bar in enumerate(bars):
        y = top + row * row_h
        label = bar.label if len(bar.label) <= 34 else bar.label[:33] + "…"
        body.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end" '
                    f'class="chart-text">{escape(label)}</text>')
        x = float(label_w)
        for index, name in enumerate(series):
            value = float(bar.values.get(name, 0))
            width = plot_w * value / top_value
            if width > 0:
                body.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{max(width, 1):.1f}" '
                            f'height="{row_h - 8}" fill="{PALETTE[index % len(PALETTE)]}">'
                            f'<title>{escape(bar.label)}: {escape(name)} '
                            f'{escape(text(value))}</title></rect>')
            x += width
        total = sum(float(bar.values.get(s, 0)) for s in series)
        body.append(f'<text x="{x + 6:.1f}" y="{y + 16}" class="chart-text">'
                    f'{escape(text(total))}</text>')
        if bar.mark is not None:
            mx = label_w + plot_w * bar.mark / top_value
            body.append(f'<line x1="{mx:.1f}" y1="{y + 1}" x2="{mx:.1f}" y2="{y + row_h - 1}" '
                        f'class="chart-threshold"><title>{escape(bar.label)}: '
                        f'{escape(mark_label)} {escape(text(bar.mark))}</title></line>')
    height = top + len(bars) * row_h + 8
    summary = description or f"{len(bars)} bars; scale up to {text(top_value)}"
    return _frame(title, summary, height, body, chart_id)


def line_chart(title: str, points: Sequence[tuple[dt.datetime, float]], *,
               description: str = "", unit: str = "", threshold: float | None = None,
               threshold_label: str = "",
               value_text: Callable[[float], str] | None = None) -> Markup:
    """A value over time, drawn as a line with a dot per point and an optional
    horizontal threshold (such as the staleness limit of a feed). `value_text` writes a
    value (default: the number and `unit`)."""
    def text(value: float) -> str:
        return value_text(value) if value_text else f"{_fmt(value)}{unit}"

    chart_id = f"chart-{next(_ids)}"
    if len(points) < 1:
        return _frame(title, description or "no data yet", 40, [
            '<text x="8" y="24" class="chart-text">No data yet.</text>'], chart_id)
    left, right, top, bottom, height = 56, 16, 12, 40, 220
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    start, end = points[0][0], points[-1][0]
    span = max((end - start).total_seconds(), 1.0)
    peak = max([v for _t, v in points] + ([threshold] if threshold is not None else []))
    top_value = _nice_max(peak)

    def xy(when: dt.datetime, value: float) -> tuple[float, float]:
        x = left + plot_w * ((when - start).total_seconds() / span if len(points) > 1 else 0.5)
        return x, top + plot_h * (1 - value / top_value)

    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" '
            'class="chart-axis"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="chart-axis"/>']
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                    f'class="chart-text">{escape(text(top_value * fraction))}</text>')
    for when, anchor, tick_x in ((start, "start", left), (end, "end", WIDTH - right)):
        body.append(f'<text x="{tick_x}" y="{height - 12}" text-anchor="{anchor}" '
                    f'class="chart-text">{when:%Y-%m-%d %H:%M}</text>')
    if threshold is not None:
        _x, y = xy(start, threshold)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}" '
                    'class="chart-threshold"/>'
                    f'<text x="{WIDTH - right}" y="{y - 4:.1f}" text-anchor="end" '
                    f'class="chart-text">{escape(threshold_label)}</text>')
    coords = [xy(t, v) for t, v in points]
    body.append('<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
        PALETTE[0], " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)))
    for (when, value), (x, y) in zip(points, coords, strict=True):
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[0]}">'
                    f'<title>{when:%Y-%m-%d %H:%M}: {escape(text(value))}</title>'
                    '</circle>')
    summary = description or (f"{len(points)} points from {start:%Y-%m-%d %H:%M} to "
                              f"{end:%Y-%m-%d %H:%M}; highest {text(peak)}")
    return _frame(title, summary, height, body, chart_id)
