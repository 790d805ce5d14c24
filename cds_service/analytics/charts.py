"""Charts as inline SVG, drawn on the server: nothing is loaded from elsewhere, no script runs, and
every text is escaped. Colours are the Okabe-Ito palette (distinguishable with colour-blindness); each
mark carries a <title> that a browser shows on hover and a screen reader reads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 760
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 56
AXIS = "#555555"
GRID = "#dddddd"


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


OUTCOME_SERIES = (Series("accepted", "Accepted", "#009E73"), Series("overridden", "Overridden", "#D55E00"),
                  Series("no_outcome", "No outcome reported", "#999999"))
RATE_SERIES = (Series("acceptance_rate", "Acceptance rate", "#009E73"),
               Series("override_rate", "Override rate", "#D55E00"))


def _text(x: float, y: float, content: str, anchor: str = "middle", size: int = 11, extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="#222222"{extra}>'
            f"{escape(content)}</text>")


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n at or above `value` (at least 1)."""
    if value <= 1:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _percent(value: float) -> str:
    return f"{value * 100:.0f} %"


def _frame(chart_id: str, title: str, height: int, body: list[str], legend: Sequence[Series]) -> Markup:
    items = []
    x = LEFT
    for series in legend:
        items.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{series.color}"/>')
        items.append(_text(x + 16, 16, series.label, anchor="start"))
        x += 28 + 7 * len(series.label)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" role="img" '
           f'viewBox="0 0 {WIDTH} {height}" aria-labelledby="{escape(chart_id)}-title">'
           f'<title id="{escape(chart_id)}-title">{escape(title)}</title>' + "".join(items) + "".join(body) + "</svg>")
    return Markup(svg)  # every text above went through html.escape


def _y_axis(top: float, bottom: float, maximum: float, percent: bool) -> list[str]:
    parts = []
    for i in range(5):
        value = maximum * i / 4
        y = bottom - (bottom - top) * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        label = _percent(value) if percent else (f"{value:g}")
        parts.append(_text(LEFT - 6, y + 4, label, anchor="end"))
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{top}" y2="{bottom}" stroke="{AXIS}"/>')
    return parts


LABEL_WIDTH = 76  # a date at font size 11, with a gap


def _x_labels(labels: Sequence[str], step: float, bottom: float) -> list[str]:
    every = max(1, math.ceil(LABEL_WIDTH / step))  # as many labels as fit side by side
    return [_text(LEFT + step * (i + 0.5), bottom + 16, label)
            for i, label in enumerate(labels) if i % every == 0]


def stacked_columns(chart_id: str, title: str, labels: Sequence[str], values: Sequence[dict[str, float]],
                    series: Sequence[Series] = OUTCOME_SERIES, height: int = 260) -> Markup:
    """One column per label, its series stacked (counts)."""
    bottom = height - BOTTOM
    maximum = _nice_max(max((sum(v.get(s.key, 0) for s in series) for v in values), default=0))
    step = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    width = max(1.0, step * 0.7)
    body = _y_axis(TOP, bottom, maximum, percent=False)
    for i, (label, point) in enumerate(zip(labels, values, strict=True)):
        y = float(bottom)
        for s in series:
            value = point.get(s.key, 0)
            if not value:
                continue
            h = (bottom - TOP) * value / maximum
            y -= h
            body.append(f'<rect class="bar" data-series="{escape(s.key)}" data-label="{escape(label)}" '
                        f'data-value="{value:g}" x="{LEFT + step * i + (step - width) / 2:.1f}" y="{y:.1f}" '
                        f'width="{width:.1f}" height="{h:.1f}" fill="{s.color}">'
                        f"<title>{escape(f'{label}: {s.label} {value:g}')}</title></rect>")
    body.extend(_x_labels(labels, step, bottom))
    return _frame(chart_id, title, height, body, series)


def lines(chart_id: str, title: str, labels: Sequence[str], values: Sequence[dict[str, float | None]],
          series: Sequence[Series] = RATE_SERIES, height: int = 240) -> Markup:
    """Rates (0–1) over the labels, one polyline per series; a period without cards is a gap."""
    bottom = height - BOTTOM
    step = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    body = _y_axis(TOP, bottom, 1.0, percent=True)
    for s in series:
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, point in enumerate(values):
            value = point.get(s.key)
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            x, y = LEFT + step * (i + 0.5), bottom - (bottom - TOP) * value
            segment.append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle class="point" data-series="{escape(s.key)}" data-label="{escape(labels[i])}" '
                        f'data-value="{value:g}" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.color}">'
                        f"<title>{escape(f'{labels[i]}: {s.label} {_percent(value)}')}</title></circle>")
        if segment:
            segments.append(segment)
        for points in segments:
            body.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{s.color}" stroke-width="2"/>')
    body.extend(_x_labels(labels, step, bottom))
    return _frame(chart_id, title, height, body, series)


def grouped_bars(chart_id: str, title: str, labels: Sequence[str], values: Sequence[dict[str, float | None]],
                 series: Sequence[Series] = RATE_SERIES, percent: bool = True, unit: str = "") -> Markup:
    """One row per label (a topic), a horizontal bar per series."""
    row_height, bar = 14 * len(series) + 10, 12
    left = 250
    height = TOP + row_height * max(1, len(labels)) + 24
    maximum = 1.0 if percent else _nice_max(max((v or 0 for p in values for v in p.values()), default=0))
    span = WIDTH - left - RIGHT - 60
    body = []
    for i in range(5):
        x = left + span * i / 4
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{height - 24}" stroke="{GRID}"/>')
        tick = maximum * i / 4
        body.append(_text(x, height - 8, _percent(tick) if percent else f"{tick:g}{unit}"))
    for row, (label, point) in enumerate(zip(labels, values, strict=True)):
        y0 = TOP + row_height * row
        short = label if len(label) <= 36 else label[:35].rstrip() + "…"
        body.append(_text(left - 8, y0 + row_height / 2 + 2, short, anchor="end",
                          extra="" if short == label else f' data-full="{escape(label)}"'))
        for j, s in enumerate(series):
            value = point.get(s.key)
            y = y0 + 4 + j * 14
            if value is None:
                body.append(_text(left + 4, y + 10, "no data", anchor="start", size=10))
                continue
            w = span * min(value, maximum) / maximum
            shown = _percent(value) if percent else f"{value:g}{unit}"
            body.append(f'<rect class="bar" data-series="{escape(s.key)}" data-label="{escape(label)}" '
                        f'data-value="{value:g}" x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{s.color}">'
                        f"<title>{escape(f'{label}: {s.label} {shown}')}</title></rect>")
            body.append(_text(left + w + 4, y + 10, shown, anchor="start", size=10))
    return _frame(chart_id, title, height, body, series)
