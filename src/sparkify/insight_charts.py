"""The charts of the report's sections on users, subscriptions, feedback and devices: one
function per question of issue #18, each drawing the rows of its named query (see
``docs/queries.md`` for their columns) and returning its hover tips, as in ``charts``."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sparkify.backends import Result
from sparkify.charts import (
    BLUE,
    GREEN,
    ORANGE,
    SKY,
    VERMILLION,
    Tip,
    column_tips,
    date_axis,
    integer_axis,
    no_data,
    period_bars,
    period_columns,
    period_label,
    ranking,
    ranking_axis,
    stacked_periods,
)

RETENTION_COHORTS = 12  # the latest cohorts drawn, and the weeks after their first
CHART_ROWS = 10  # rows of a ranking drawn (the table under it has them all)


def active_users(fig: Any, result: Result, grain: str) -> list[Tip]:
    texts = [
        f"{period_label(r[0], grain)}: {int(r[1]):,} active ({int(r[2]):,} paid, "
        f"{int(r[3]):,} free)"
        for r in result.rows
    ]
    starts, users = [r[0] for r in result.rows], [int(r[1]) for r in result.rows]
    return period_columns(fig, starts, grain, (users, BLUE, ""), "users", texts)


def new_vs_returning(fig: Any, result: Result, grain: str) -> list[Tip]:
    starts = [r[0] for r in result.rows]
    new, back = [int(r[1]) for r in result.rows], [int(r[2]) for r in result.rows]
    texts = [
        f"{period_label(s, grain)}: {n:,} new, {b:,} returning"
        for s, n, b in zip(starts, new, back, strict=True)
    ]
    lower, upper = (back, BLUE, "returning"), (new, GREEN, "new")
    return stacked_periods(fig, starts, grain, lower, upper, "users", texts)


def retention(fig: Any, result: Result) -> list[Tip]:
    """The latest cohorts (rows) by weeks since their first (columns), shaded by the share
    of the cohort active that week; weeks the data does not reach yet are left blank."""
    ax = fig.axes[0]
    cohorts = sorted({r[0] for r in result.rows})[-RETENTION_COHORTS:]
    cells = {(r[0], int(r[2])): r for r in result.rows if r[0] in cohorts}
    last = max(r[0] + dt.timedelta(weeks=int(r[2])) for r in result.rows)
    weeks = range(min(RETENTION_COHORTS, 1 + max(week for _, week in cells)))
    sizes = {r[0]: int(r[1]) for r in result.rows}

    def share(cohort: dt.date, week: int) -> float:
        if cohort + dt.timedelta(weeks=week) > last:
            return math.nan  # not reached yet
        found = cells.get((cohort, week))
        return float(found[4]) if found else 0.0

    grid = [[share(c, w) for w in weeks] for c in cohorts]
    mesh = ax.pcolormesh(grid, cmap="cividis", vmin=0, vmax=1, edgecolors="white", linewidth=0.6)
    ax.invert_yaxis()
    ax.set_yticks([i + 0.5 for i in range(len(cohorts))], [f"{c.day} {c:%b %y}" for c in cohorts])
    ax.set_xticks([w + 0.5 for w in weeks], [str(w) for w in weeks])
    ax.set_xlabel("weeks after the first")
    ax.grid(False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(mesh, ax=ax, pad=0.02, aspect=15)
    bar.set_label("share of the cohort active")
    bar.outline.set_visible(False)
    bar.solids.set_rasterized(False)  # vector, not an embedded PNG
    bar.solids.set_edgecolor("face")
    tips = []
    for row, cohort in enumerate(cohorts):
        for week in weeks:
            value = grid[row][week]
            users = int(cells[cohort, week][3]) if (cohort, week) in cells else 0
            seen = "not reached yet" if math.isnan(value) else f"{users:,} of {sizes[cohort]:,}"
            text = f"week {week} of {cohort.day} {cohort:%b %Y}: {seen} users"
            if not math.isnan(value):
                text += f" ({100 * value:.0f}%)"
            tips.append(Tip(ax, text, (week, week + 1), (row, row + 1)))
    return tips


def conversion(fig: Any, result: Result) -> list[Tip]:
    """The free -> paid funnel, one bar per step, each with its share of the first."""
    steps, users = [str(r[0]) for r in result.rows], [int(r[1]) for r in result.rows]
    if not any(users):  # the funnel has its steps even without data
        return no_data(fig.axes[0], "No free users in this period")
    labels = [
        f"{step.replace('_', ' ')} ({100 * n / users[0]:.0f}%)" if users[0] else step
        for step, n in zip(steps, users, strict=True)
    ]
    return ranking(fig, labels, users, GREEN, "users", "users")


def churn(fig: Any, result: Result, grain: str) -> list[Tip]:
    """Upgrades above the axis; downgrades and cancellations below."""
    ax = fig.axes[0]
    starts = [r[0] for r in result.rows]
    cancels, downs, ups = ([int(r[i]) for r in result.rows] for i in (1, 2, 3))
    lefts, widths = period_bars(starts, grain)
    bars = ax.bar(lefts, ups, width=widths, align="edge", color=GREEN, label="upgrades")
    ax.bar(lefts, [-d for d in downs], width=widths, align="edge", color=ORANGE, label="downgrades")
    below = [-d - c for d, c in zip(downs, cancels, strict=True)]
    ax.bar(
        lefts,
        [-c for c in cancels],
        width=widths,
        align="edge",
        bottom=[-d for d in downs],
        color=VERMILLION,
        label="cancellations",
    )
    ax.axhline(0, color="#888888", linewidth=0.8)
    date_axis(ax)
    ax.set_ylabel(f"users per {grain}")
    integer_axis(ax.yaxis)
    ax.yaxis.set_major_formatter(lambda value, _: f"{abs(value):,.0f}")
    ax.legend(loc="upper left", ncols=3, fontsize=8)
    top = max([*ups, *(-b for b in below), 1])
    ax.set_ylim(-top * 1.2, top * 1.9)
    texts = [
        f"{period_label(s, grain)}: {u:,} upgrades, {d:,} downgrades, {c:,} cancellations"
        for s, u, d, c in zip(starts, ups, downs, cancels, strict=True)
    ]
    return column_tips(ax, bars, texts)


def song_feedback(fig: Any, result: Result) -> list[Tip]:
    """Thumbs up to the right, thumbs down to the left, most liked on top."""
    rows = result.rows[:CHART_ROWS]
    labels = [f"{title or '(untitled)'} · {artist or '?'}" for title, artist, *_ in rows]
    ups, downs = [int(r[2]) for r in rows], [int(r[3]) for r in rows]
    ax = fig.axes[0]
    ax.barh(range(len(rows)), ups, height=0.7, color=GREEN, label="thumbs up")
    ax.barh(
        range(len(rows)), [-d for d in downs], height=0.7, color=VERMILLION, label="thumbs down"
    )
    ax.axvline(0, color="#888888", linewidth=0.8)
    ranking_axis(ax, labels, "listeners' thumbs")
    integer_axis(ax.xaxis)
    ax.xaxis.set_major_formatter(lambda value, _: f"{abs(value):,.0f}")
    ax.legend(loc="lower right")
    return [
        Tip(ax, f"net {u - d:+,}: {label} ({u:,} up, {d:,} down)", y=(i - 0.5, i + 0.5))
        for i, (label, u, d) in enumerate(zip(labels, ups, downs, strict=True))
    ]


def devices(fig: Any, result: Result) -> list[Tip]:
    rows = sorted(result.rows, key=lambda r: -int(r[4]))[:CHART_ROWS]
    labels = [" · ".join(str(part or "unknown") for part in row[:3]) for row in rows]
    return ranking(fig, labels, [int(r[4]) for r in rows], SKY, "sessions", "sessions")


def session_stats(fig: Any, result: Result, grain: str) -> list[Tip]:
    ax = fig.axes[0]
    starts = [r[0] for r in result.rows]
    lefts, widths = period_bars(starts, grain)
    medians = [float(r[3] or 0) for r in result.rows]
    bars = ax.bar(lefts, medians, width=widths, align="edge", color=SKY, label="median")
    centres = [left + width / 2 for left, width in zip(lefts, widths, strict=True)]
    ax.plot(
        centres,
        [float(r[2] or 0) for r in result.rows],
        "o-",
        color=ORANGE,
        markersize=3,
        linewidth=1,
        label="mean",
    )
    date_axis(ax)
    ax.set_ylabel("minutes per session")
    ax.legend(loc="upper left", ncols=2)
    ax.set_ylim(0, max([*medians, *(float(r[2] or 0) for r in result.rows), 1]) * 1.35)
    texts = [
        f"{period_label(r[0], grain)}: {int(r[1]):,} sessions, median {float(r[3] or 0):.1f} min, "
        f"{float(r[4] or 0):.1f} plays"
        for r in result.rows
    ]
    return column_tips(ax, bars, texts)
