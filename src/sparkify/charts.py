"""The report's charts: matplotlib figures exported as SVG elements to inline in the page.

``draw_svg`` makes the figure in the report's style and turns it into markup; the other public
functions each draw one chart from the rows of its named query and return its hover tips: a
box per mark (a bar, a column of bars, a heatmap cell) and the value it stands for. The tips
become a layer of SVG over the chart, shown by CSS alone while the pointer is over a box (the
page runs no script), each with a ``<title>`` for tooltips and screen readers. matplotlib and
markupsafe are imported only when a chart is drawn, so commands that never draw one neither
pay for them nor need them installed (they come with the ``report`` extra). Text is kept as
SVG text, which matplotlib escapes, and tip text is escaped here, so values from the data (song
titles, artist names) render as text.
"""

from __future__ import annotations

import calendar
import datetime as dt
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkify.backends import Result

if TYPE_CHECKING:
    from markupsafe import Markup

DEFAULT_HEIGHT = 3.2  # inches; every chart is 5 inches wide
NO_DATA = "No data loaded yet"
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
HEATMAP_ORDER = (1, 2, 3, 4, 5, 6, 0)  # Monday first; the time table counts Sunday as 0

# Okabe-Ito colours, distinguishable with every common form of colour blindness, and a grey.
BLUE, ORANGE, GREEN, VERMILLION, SKY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9"
GREY = "#BBBBBB"
_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: selectable, escaped, no embedded glyphs
    "text.parse_math": False,  # a "$" in a song title is not mathtext
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib: metrics without a download
    "font.size": 10,
    "figure.titlesize": 11.5,
    "figure.titleweight": "bold",
    "axes.labelcolor": "#444444",
    "axes.edgecolor": "#B0B0B0",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#E6E6E6",
    "xtick.color": "#555555",
    "ytick.color": "#555555",
    "text.color": "#222222",
    "legend.frameon": False,
}

TIP_CHAR_WIDTH = 7.0  # SVG units per character of tip text (11 px bold), to keep it inside


@dataclass(frozen=True)
class Tip:
    """A hover box on ``ax`` in data coordinates (``None``: the axes' whole extent that way)
    and the value shown while the pointer is over it."""

    ax: Any
    text: str
    x: tuple[float, float] | None = None
    y: tuple[float, float] | None = None


Draw = Callable[[Any, Result], list[Tip]]  # draws a query's rows on a figure with one axes


def draw_svg(
    chart_id: str, title: str, draw: Draw, result: Result, *, height: float, empty: str
) -> Markup:
    """Draw one chart (or the ``empty`` message when ``result`` has no rows) as inline SVG."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    style: Any = {**_STYLE, "svg.hashsalt": chart_id}  # ids stable from run to run
    with rc_context(style):
        # 72 dpi: display coordinates are the SVG's points, so the tips land on the marks
        fig = Figure(figsize=(5.0, height), layout="constrained", dpi=72)
        fig.suptitle(title, x=0.02, ha="left")
        ax = fig.add_subplot()
        tips = draw(fig, result) if result.rows else no_data(ax, empty)
        buffer = io.StringIO()
        metadata = {"Creator": None, "Date": None, "Format": None, "Type": None}
        fig.savefig(buffer, format="svg", metadata=metadata, transparent=True)
    return _inline_svg(buffer.getvalue(), chart_id, title, _tip_layer(fig, tips))


def _inline_svg(svg: str, chart_id: str, title: str, tips: str = "") -> Markup:
    """matplotlib's SVG document as an element of the page: no prolog, scales to its box,
    labelled, its ids prefixed so that several charts in one page do not clash, and the
    ``tips`` layer on top."""
    from markupsafe import Markup, escape

    svg = svg[svg.index("<svg") :]  # drop the XML declaration and DOCTYPE
    end = svg.index(">")
    root = re.sub(r'\s(?:width|height)="[^"]*"', "", svg[:end])  # keep viewBox: it scales
    root = root.replace(
        "<svg", f'<svg class="chart-svg" role="img" aria-label="{escape(title)}" width="100%"', 1
    )

    def prefix_ids(tag: re.Match[str]) -> str:
        # Only inside tags: text from the data has its "<" escaped, so it never matches here.
        return re.sub(r'(\sid="|url\(#|href="#)', rf"\g<1>{chart_id}-", tag.group(0))

    body = re.sub(r"<[^<>]+>", prefix_ids, svg[end:])
    closing = body.rindex("</svg>")
    return Markup(root + body[:closing] + tips + body[closing:])


def _tip_layer(fig: Any, tips: list[Tip]) -> str:
    """The tips as SVG over the drawn figure: per tip a transparent box that catches the
    pointer, the value as text (hidden until hovered: see report.css) and a ``<title>``."""
    from markupsafe import escape

    if not tips:
        return ""
    height = fig.bbox.height
    parts = ['<g class="tips">']
    for tip in tips:
        box = _display_box(tip)
        if box is None:
            continue
        x0, x1, y0, y1 = box
        top, bottom = height - y1, height - y0  # SVG's y grows downwards
        plot = tip.ax.bbox
        shown = shorten(tip.text, int((fig.bbox.width - 4) / TIP_CHAR_WIDTH))
        half = TIP_CHAR_WIDTH * len(shown) / 2
        x = min(max((x0 + x1) / 2, half + 2), fig.bbox.width - half - 2)
        y = top - 5 if top - 5 >= 12 else min(bottom + 14, height - 3)
        if tip.y is None:  # a whole column: the value goes at the top of the plot
            y = max(height - plot.y1 - 5, 12)
        parts.append(
            f'<g class="tip"><title>{escape(tip.text)}</title>'
            f'<rect class="hit" x="{x0:.1f}" y="{top:.1f}" width="{x1 - x0:.1f}" '
            f'height="{bottom - top:.1f}"/><text class="tip-text" x="{x:.1f}" y="{y:.1f}" '
            f'text-anchor="middle">{escape(shown)}</text></g>'
        )
    parts.append("</g>")
    return "".join(parts)


def _display_box(tip: Tip) -> tuple[float, float, float, float] | None:
    """The tip's box in display coordinates (points from the bottom left), within its axes."""
    plot = tip.ax.bbox
    x0, x1, y0, y1 = plot.x0, plot.x1, plot.y0, plot.y1
    if tip.x is not None:
        (a, _), (b, _) = tip.ax.transData.transform([(tip.x[0], 0), (tip.x[1], 0)])
        x0, x1 = max(x0, min(a, b)), min(x1, max(a, b))
    if tip.y is not None:
        (_, a), (_, b) = tip.ax.transData.transform([(0, tip.y[0]), (0, tip.y[1])])
        y0, y1 = max(y0, min(a, b)), min(y1, max(a, b))
    return (x0, x1, y0, y1) if x1 - x0 > 0.5 and y1 - y0 > 0.5 else None


def no_data(ax: Any, message: str = NO_DATA) -> list[Tip]:
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#666666")
    ax.set_axis_off()
    return []


def _axes(fig: Any) -> Any:
    return fig.axes[0]


def date_axis(ax: Any) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(minticks=3, maxticks=7)
    formatter = ConciseDateFormatter(locator)
    formatter.formats[2] = formatter.zero_formats[2] = "%-d %b"  # days: "5 Nov"
    formatter.offset_formats[2] = "%Y"
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("date (UTC)")


def integer_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def column_tips(ax: Any, bars: Any, texts: Sequence[str]) -> list[Tip]:
    """A tip per vertical bar, over the whole height of the plot."""
    return [
        Tip(ax, text, x=(bar.get_x(), bar.get_x() + bar.get_width()))
        for bar, text in zip(bars, texts, strict=True)
    ]


def period_length(start: dt.date, grain: str) -> int:
    """Days in the ``grain`` period that starts on ``start``."""
    if grain == "month":
        return calendar.monthrange(start.year, start.month)[1]
    return 7 if grain == "week" else 1


def period_label(start: dt.date, grain: str) -> str:
    """How a tip names a period: "Mon 5 Nov 2018", "week of 5 Nov 2018", "Nov 2018"."""
    if grain == "month":
        return f"{start:%b %Y}"
    day = f"{start.day} {start:%b %Y}"
    return f"week of {day}" if grain == "week" else f"{start:%a} {day}"


def period_bars(starts: Sequence[dt.date], grain: str) -> tuple[list[float], list[float]]:
    """Where each period's bar starts (in matplotlib's date numbers) and how wide it is: 80%
    of the period, centred in it, so days, weeks and months all read as a row of bars."""
    from matplotlib.dates import date2num

    lengths = [period_length(start, grain) for start in starts]
    lefts = [float(date2num(start)) + 0.1 * n for start, n in zip(starts, lengths, strict=True)]
    return lefts, [0.8 * n for n in lengths]


# -- one function per chart, each given the rows of its named query --------------------------


def plays_per_period(fig: Any, result: Result, grain: str) -> list[Tip]:
    texts = [
        f"{period_label(r[0], grain)}: {int(r[1]):,} plays, {int(r[2]):,} listeners"
        for r in result.rows
    ]
    starts, plays = [r[0] for r in result.rows], [int(r[1]) for r in result.rows]
    return period_columns(fig, starts, grain, (plays, BLUE, ""), "plays", texts)


def free_vs_paid_per_period(fig: Any, result: Result, grain: str) -> list[Tip]:
    starts = [r[0] for r in result.rows]
    paid, free = [int(r[3]) for r in result.rows], [int(r[4]) for r in result.rows]
    texts = [
        f"{period_label(start, grain)}: {p:,} paid, {f:,} free"
        for start, p, f in zip(starts, paid, free, strict=True)
    ]
    return stacked_periods(
        fig, starts, grain, (free, ORANGE, "free"), (paid, BLUE, "paid"), "plays", texts
    )


Series = tuple[Sequence[int], str, str]  # values, colour, legend label


def period_columns(
    fig: Any,
    starts: Sequence[dt.date],
    grain: str,
    series: Series,
    unit: str,
    texts: Sequence[str],
) -> list[Tip]:
    """A count per period, one bar each; a tip per period."""
    ax = _axes(fig)
    lefts, widths = period_bars(starts, grain)
    bars = ax.bar(lefts, series[0], width=widths, align="edge", color=series[1])
    date_axis(ax)
    ax.set_ylabel(f"{unit} per {grain}")
    integer_axis(ax.yaxis)
    return column_tips(ax, bars, texts)


def stacked_periods(
    fig: Any,
    starts: Sequence[dt.date],
    grain: str,
    lower: Series,
    upper: Series,
    unit: str,
    texts: Sequence[str],
) -> list[Tip]:
    """Two counts per period, ``upper`` stacked on ``lower``; a tip per period."""
    ax = _axes(fig)
    lefts, widths = period_bars(starts, grain)
    ax.bar(lefts, lower[0], width=widths, align="edge", color=lower[1], label=lower[2])
    bars = ax.bar(
        lefts, upper[0], width=widths, align="edge", bottom=lower[0], color=upper[1], label=upper[2]
    )
    date_axis(ax)
    ax.set_ylabel(f"{unit} per {grain}")
    integer_axis(ax.yaxis)
    ax.legend(loc="upper left", ncols=2)
    ax.margins(y=0.15)
    return column_tips(ax, bars, texts)


def plays_by_hour(fig: Any, result: Result) -> list[Tip]:
    ax = _axes(fig)
    counts = dict(result.rows)
    plays = [int(counts.get(h, 0)) for h in range(24)]
    bars = ax.bar(range(24), plays, width=0.8, color=BLUE)
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlim(-0.7, 23.7)
    ax.set_xlabel("hour of day (UTC)")
    ax.set_ylabel("plays")
    integer_axis(ax.yaxis)
    return column_tips(
        ax, bars, [f"{h:02d}:00–{h:02d}:59 UTC: {n:,} plays" for h, n in enumerate(plays)]
    )


def weekday_hour_heatmap(fig: Any, result: Result) -> list[Tip]:
    ax = _axes(fig)
    grid = [[0] * 24 for _ in HEATMAP_ORDER]
    for weekday, hour, plays in result.rows:
        grid[HEATMAP_ORDER.index(int(weekday))][int(hour)] = int(plays)
    mesh = ax.pcolormesh(grid, cmap="cividis", edgecolors="white", linewidth=0.6)
    ax.invert_yaxis()
    ax.set_yticks([i + 0.5 for i in range(7)], [WEEKDAYS[d][:3] for d in HEATMAP_ORDER])
    ax.set_xticks([h + 0.5 for h in range(0, 24, 3)], [str(h) for h in range(0, 24, 3)])
    ax.set_xlabel("hour of day (UTC)")
    ax.grid(False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(mesh, ax=ax, pad=0.02, aspect=15)
    bar.set_label("plays")
    bar.outline.set_visible(False)
    bar.solids.set_rasterized(False)  # vector, not an embedded PNG
    bar.solids.set_edgecolor("face")  # no hairline seams between the colour steps
    integer_axis(bar.ax.yaxis)
    return [
        Tip(
            ax,
            f"{WEEKDAYS[day]} {hour:02d}:00 UTC: {grid[row][hour]:,} plays",
            (hour, hour + 1),
            (row, row + 1),
        )
        for row, day in enumerate(HEATMAP_ORDER)
        for hour in range(24)
    ]


def ranking(
    fig: Any,
    labels: Sequence[str],
    values: Sequence[int],
    colour: str,
    unit: str = "plays",
    axis_label: str = "matched plays",
) -> list[Tip]:
    """One horizontal bar per label, the first on top, each with its value; a tip each."""
    ax = _axes(fig)
    bars = ax.barh(range(len(values)), values, height=0.7, color=colour)
    ax.bar_label(bars, padding=3, fmt="{:,.0f}", color="#444444")
    ranking_axis(ax, labels, axis_label)
    integer_axis(ax.xaxis)
    return [
        Tip(ax, f"{n:,} {unit}: {label}", y=(i - 0.5, i + 0.5))  # the value first: it is kept
        for i, (label, n) in enumerate(zip(labels, values, strict=True))
    ]


def ranking_axis(ax: Any, labels: Sequence[str], axis_label: str) -> None:
    """Rows labelled (shortened), the first on top; vertical grid lines only."""
    ax.set_yticks(range(len(labels)), [shorten(label) for label in labels])
    ax.invert_yaxis()
    ax.set_xlabel(axis_label)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", visible=True)
    ax.margins(x=0.12)


def shorten(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def top_songs(fig: Any, result: Result) -> list[Tip]:
    labels = [f"{title or '(untitled)'} · {artist or '?'}" for title, artist, _ in result.rows]
    return ranking(fig, labels, [int(r[2]) for r in result.rows], BLUE)


def top_artists(fig: Any, result: Result) -> list[Tip]:
    return ranking(fig, [r[0] or "?" for r in result.rows], [int(r[1]) for r in result.rows], GREEN)


def song_match_rate(fig: Any, result: Result) -> list[Tip]:
    ax = _axes(fig)
    row = result.as_dicts()[0]
    plays, matched = int(row["plays"]), int(row["matched_plays"] or 0)
    if not plays:
        return no_data(ax)
    share = 100.0 * matched / plays
    ax.barh([0], [share], height=0.5, color=BLUE, label=f"matched ({matched:,})")
    ax.barh([0], [100 - share], left=[share], height=0.5, color=GREY, label="not in catalogue")
    inside = share >= 12  # room for the label on the bar itself
    x, colour, align = (share / 2, "white", "center") if inside else (share + 1, "#222222", "left")
    ax.text(x, 0, f"{share:.1f}%", ha=align, va="center", color=colour, weight="bold")
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.6, 1.0)
    ax.set_yticks([])
    ax.set_xlabel("% of plays")
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", visible=True)
    ax.legend(loc="upper left", ncols=2)
    unmatched = plays - matched
    return [
        Tip(
            ax, f"matched: {matched:,} of {plays:,} plays ({share:.1f}%)", (0, share), (-0.25, 0.25)
        ),
        Tip(
            ax,
            f"not in the catalogue: {unmatched:,} plays ({100 - share:.1f}%)",
            (share, 100),
            (-0.25, 0.25),
        ),
    ]


def level_changes(fig: Any, result: Result, periods: list[Any], grain: str) -> list[Tip]:
    """Upgrades above the axis, downgrades below, in every period of ``periods`` and of the
    rows (so its axis matches the plays charts')."""
    ax = _axes(fig)
    found = {r[0]: (int(r[1]), int(r[2])) for r in result.rows}
    every = sorted(set(periods) | set(found))
    ups = [found.get(d, (0, 0))[0] for d in every]
    downs = [found.get(d, (0, 0))[1] for d in every]
    lefts, widths = period_bars(every, grain)
    bars = ax.bar(
        lefts, ups, width=widths, align="edge", color=GREEN, label="upgrades (free -> paid)"
    )
    ax.bar(
        lefts,
        [-d for d in downs],
        width=widths,
        align="edge",
        color=VERMILLION,
        label="downgrades (paid -> free)",
    )
    ax.axhline(0, color="#888888", linewidth=0.8)
    date_axis(ax)
    ax.set_ylabel(f"users per {grain}")
    integer_axis(ax.yaxis)
    ax.yaxis.set_major_formatter(lambda value, _: f"{abs(value):,.0f}")
    ax.legend(loc="upper left", ncols=1)
    top = max([*ups, *downs, 1])
    ax.set_ylim(-top * 1.2, top * 1.9)
    texts = [
        f"{period_label(d, grain)}: {u:,} upgrades, {n:,} downgrades"
        for d, u, n in zip(every, ups, downs, strict=True)
    ]
    return column_tips(ax, bars, texts)


def session_lengths(fig: Any, result: Result) -> list[Tip]:
    ax = _axes(fig)
    lengths, sessions = [int(r[0]) for r in result.rows], [int(r[1]) for r in result.rows]
    bars = ax.bar(lengths, sessions, color=SKY)
    ax.set_xlabel("songs played in the session")
    ax.set_ylabel("sessions")
    integer_axis(ax.xaxis)
    integer_axis(ax.yaxis)
    texts = [f"{k:,} songs: {n:,} sessions" for k, n in zip(lengths, sessions, strict=True)]
    return column_tips(ax, bars, texts)
