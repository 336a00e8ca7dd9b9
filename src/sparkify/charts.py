"""The report's charts: matplotlib figures exported as SVG elements to inline in the page.

``draw_svg`` makes the figure in the report's style and turns it into markup; the other public
functions each draw one chart from the rows of its named query. matplotlib and markupsafe are
imported only when a chart is drawn, so commands that never draw one neither pay for them nor
need them installed (they come with the ``report`` extra). Text is kept as SVG
text, which matplotlib escapes, so values from the data (song titles, artist names) render as
text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
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

Draw = Callable[[Any, Result], None]  # draws a query's rows on a figure with one axes


def draw_svg(
    chart_id: str, title: str, draw: Draw, result: Result, *, height: float, empty: str
) -> Markup:
    """Draw one chart (or the ``empty`` message when ``result`` has no rows) as inline SVG."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    style: Any = {**_STYLE, "svg.hashsalt": chart_id}  # ids stable from run to run
    with rc_context(style):
        fig = Figure(figsize=(5.0, height), layout="constrained")
        fig.suptitle(title, x=0.02, ha="left")
        ax = fig.add_subplot()
        if result.rows:
            draw(fig, result)
        else:
            _no_data(ax, empty)
        buffer = io.StringIO()
        metadata = {"Creator": None, "Date": None, "Format": None, "Type": None}
        fig.savefig(buffer, format="svg", metadata=metadata, transparent=True)
    return _inline_svg(buffer.getvalue(), chart_id, title)


def _inline_svg(svg: str, chart_id: str, title: str) -> Markup:
    """matplotlib's SVG document as an element of the page: no prolog, scales to its box,
    labelled, and its ids prefixed so that several charts in one page do not clash."""
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

    return Markup(root + re.sub(r"<[^<>]+>", prefix_ids, svg[end:]))


def _no_data(ax: Any, message: str = NO_DATA) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#666666")
    ax.set_axis_off()


def _axes(fig: Any) -> Any:
    return fig.axes[0]


def _dates(ax: Any) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(minticks=3, maxticks=7)
    formatter = ConciseDateFormatter(locator)
    formatter.formats[2] = formatter.zero_formats[2] = "%-d %b"  # days: "5 Nov"
    formatter.offset_formats[2] = "%Y"
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("date (UTC)")


def _integer_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


# -- one function per chart, each given the rows of its named query --------------------------


def plays_per_day(fig: Any, result: Result) -> None:
    ax = _axes(fig)
    days, plays = [r[0] for r in result.rows], [r[1] for r in result.rows]
    ax.bar(days, plays, width=0.8, color=BLUE)
    _dates(ax)
    ax.set_ylabel("plays per day")
    _integer_axis(ax.yaxis)


def free_vs_paid_per_day(fig: Any, result: Result) -> None:
    ax = _axes(fig)
    days = [r[0] for r in result.rows]
    paid, free = [int(r[3]) for r in result.rows], [int(r[4]) for r in result.rows]
    ax.bar(days, free, width=0.8, color=ORANGE, label="free")
    ax.bar(days, paid, width=0.8, bottom=free, color=BLUE, label="paid")
    _dates(ax)
    ax.set_ylabel("plays per day")
    _integer_axis(ax.yaxis)
    ax.legend(loc="upper left", ncols=2, bbox_to_anchor=(0, 1.0))
    ax.margins(y=0.15)


def plays_by_hour(fig: Any, result: Result) -> None:
    ax = _axes(fig)
    counts = dict(result.rows)
    ax.bar(range(24), [counts.get(h, 0) for h in range(24)], width=0.8, color=BLUE)
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlim(-0.7, 23.7)
    ax.set_xlabel("hour of day (UTC)")
    ax.set_ylabel("plays")
    _integer_axis(ax.yaxis)


def weekday_hour_heatmap(fig: Any, result: Result) -> None:
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
    _integer_axis(bar.ax.yaxis)


def _ranking(fig: Any, labels: Sequence[str], plays: Sequence[int], colour: str) -> None:
    ax = _axes(fig)
    bars = ax.barh(range(len(plays)), plays, height=0.7, color=colour)
    ax.set_yticks(range(len(plays)), [_shorten(label) for label in labels])
    ax.invert_yaxis()
    ax.bar_label(bars, padding=3, fmt="{:,.0f}", color="#444444")
    ax.set_xlabel("matched plays")
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", visible=True)
    ax.margins(x=0.12)
    _integer_axis(ax.xaxis)


def _shorten(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def top_songs(fig: Any, result: Result) -> None:
    labels = [f"{title or '(untitled)'} · {artist or '?'}" for title, artist, _ in result.rows]
    _ranking(fig, labels, [int(r[2]) for r in result.rows], BLUE)


def top_artists(fig: Any, result: Result) -> None:
    _ranking(fig, [r[0] or "?" for r in result.rows], [int(r[1]) for r in result.rows], GREEN)


def song_match_rate(fig: Any, result: Result) -> None:
    ax = _axes(fig)
    row = result.as_dicts()[0]
    plays, matched = int(row["plays"]), int(row["matched_plays"] or 0)
    if not plays:
        _no_data(ax)
        return
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


def level_changes(fig: Any, result: Result, days: list[Any]) -> None:
    """Upgrades above the axis, downgrades below, on every day in ``days`` and in the rows."""
    ax = _axes(fig)
    found = {r[0]: (int(r[1]), int(r[2])) for r in result.rows}
    every = sorted(set(days) | set(found))
    ups = [found.get(d, (0, 0))[0] for d in every]
    downs = [-found.get(d, (0, 0))[1] for d in every]
    ax.bar(every, ups, width=0.8, color=GREEN, label="upgrades (free -> paid)")
    ax.bar(every, downs, width=0.8, color=VERMILLION, label="downgrades (paid -> free)")
    ax.axhline(0, color="#888888", linewidth=0.8)
    _dates(ax)
    ax.set_ylabel("users per day")
    _integer_axis(ax.yaxis)
    ax.yaxis.set_major_formatter(lambda value, _: f"{abs(value):,.0f}")
    ax.legend(loc="upper left", ncols=1)
    top = max([*ups, *(-d for d in downs), 1])
    ax.set_ylim(-top * 1.2, top * 1.9)


def session_lengths(fig: Any, result: Result) -> None:
    ax = _axes(fig)
    ax.bar([int(r[0]) for r in result.rows], [int(r[1]) for r in result.rows], color=SKY)
    ax.set_xlabel("songs played in the session")
    ax.set_ylabel("sessions")
    _integer_axis(ax.xaxis)
    _integer_axis(ax.yaxis)
