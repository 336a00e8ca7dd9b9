"""The report's sections: which named queries each shows, as which charts and tables. The
queries run through ``Answers``, with the report's options (the days asked for, the grain
chosen from them), which also says the command that prints the same rows."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sparkify import analytics, charts, insight_charts, quality
from sparkify.backends import Backend, Result
from sparkify.report_blocks import (
    Card,
    Chart,
    Health,
    Note,
    Section,
    Table,
    cell,
    number,
    percent,
    plural,
)

HEALTH_LIMIT = 50  # rows of the ledger tables (runs, rejects) shown in the report


@dataclass
class Answers:
    """The report's named queries, each run once with the report's options (a ``limit`` of
    its own for some), and the command that prints the same rows."""

    backend: Backend
    limit: int
    since: dt.date | None
    until: dt.date | None
    grain: str = analytics.DEFAULT_GRAIN
    results: dict[tuple[str, int | None], Result] = field(default_factory=dict)

    def __call__(self, name: str, limit: int | None = None) -> Result:
        if (name, limit) not in self.results:
            self.results[name, limit] = analytics.run_query(
                self.backend,
                name,
                limit or self.limit,
                grain=self.grain,
                since=self.since,
                until=self.until,
            )
        return self.results[name, limit]

    def command(self, name: str, limit: int | None = None) -> str:
        query = analytics.get_query(name)
        words = ["sparkify query", name]
        if query.limited and (limit or self.limit) != analytics.DEFAULT_LIMIT:
            words.append(f"--limit {limit or self.limit}")
        if query.grained:
            words.append(f"--grain {self.grain}")
        if query.ranged:
            words += [
                f"--{end} {day}"
                for end, day in (("since", self.since), ("until", self.until))
                if day
            ]
        return " ".join(words)


def cards(summary: dict[str, Any], matches: dict[str, Any]) -> list[Card]:
    return [
        Card("Plays", number(summary["plays"]), "songs started (NextSong events)"),
        Card("Listeners", number(summary["listeners"]), "users with at least one play"),
        Card("Songs", number(summary["songs"]), "in the song catalogue"),
        Card("Artists", number(summary["artists"]), "in the song catalogue"),
        Card("Paid share", percent(summary["paid_pct"]), "of plays by paid subscribers"),
        Card("Matched plays", percent(matches["matched_pct"]), "found in the catalogue"),
    ]


def activity(run: Answers) -> Section:
    grain = run.grain
    periods = run("plays_per_period")
    return Section(
        "activity",
        "Listening activity",
        f"When people listen: plays per {grain}, the daily rhythm and the weekly pattern. "
        "All times are UTC, as recorded in the event logs.",
        [
            _chart(
                run,
                "plays_per_period",
                f"Plays per {grain}",
                lambda fig, result: charts.plays_per_period(fig, result, grain),
                periods,
                _grain_caption(grain),
            ),
            _chart(
                run,
                "free_vs_paid_per_period",
                f"Free and paid plays per {grain}",
                lambda fig, result: charts.free_vs_paid_per_period(fig, result, grain),
                periods,
                "Plays are counted under the level the listener had when the song started.",
                query="plays_per_period",
            ),
            _chart(
                run,
                "plays_by_hour",
                "Plays by hour of day (UTC)",
                charts.plays_by_hour,
                run("plays_by_hour"),
            ),
            _chart(
                run,
                "weekday_hour",
                "Plays by weekday and hour (UTC)",
                charts.weekday_hour_heatmap,
                run("weekday_hour"),
                "Darker cells have fewer plays, brighter cells more.",
            ),
        ],
    )


def _grain_caption(grain: str) -> str:
    span = {"day": "up to three months", "week": "up to two years", "month": "over two years"}
    first = {"day": "", "week": " (a bar starts on its Monday)", "month": ""}
    return f"One bar per {grain}{first[grain]}: the grain for {span[grain]} of data."


def catalogue(run: Answers, matches: dict[str, Any]) -> Section:
    top_songs, top_artists, match = run("top_songs"), run("top_artists"), run("song_match_rate")
    height = max(2.4, 1.1 + 0.27 * max(len(top_songs.rows), len(top_artists.rows)))
    return Section(
        "catalogue",
        "Songs and artists",
        "Only plays whose title and artist match a song in the catalogue can be attributed "
        "to a song and an artist, so the rankings below count matched plays.",
        [
            _chart(
                run,
                "top_songs",
                _top(top_songs, "songs"),
                charts.top_songs,
                top_songs,
                height=height,
            ),
            _chart(
                run,
                "top_artists",
                _top(top_artists, "artists"),
                charts.top_artists,
                top_artists,
                height=height,
            ),
            _chart(
                run,
                "song_match_rate",
                "Plays matched to the catalogue",
                charts.song_match_rate,
                match,
                height=2.2,
            ),
            Note("catalogue_coverage", "Why plays go unmatched", _coverage_text(matches)),
        ],
    )


def _top(result: Result, what: str) -> str:
    return f"Top {len(result.rows)} {what}" if result.rows else f"Top {what}"


def listeners(run: Answers) -> Section:
    grain = run.grain
    periods = [row[0] for row in run("plays_per_period").rows]
    return Section(
        "listeners",
        "Listeners and subscriptions",
        "Who listens, how long a session lasts, and how listeners move between the free and "
        "the paid level (from the user_levels history).",
        [
            _chart(
                run,
                "level_changes_per_period",
                f"Upgrades and downgrades per {grain}",
                lambda fig, result: charts.level_changes(fig, result, periods, grain),
                run("level_changes_per_period"),
                "An upgrade is a free -> paid change of level, a downgrade paid -> free.",
                empty="No upgrades or downgrades in this period",
            ),
            _chart(
                run,
                "session_lengths",
                "Songs per session",
                charts.session_lengths,
                run("session_lengths"),
            ),
            _table(run, "most_active_users", "Most active listeners"),
            _table(run, "free_vs_paid", "Plays by subscription level"),
        ],
    )


def users(run: Answers) -> Section:
    grain = run.grain
    return Section(
        "users",
        "Users and sessions",
        "Who is active (any page, not only plays), how many are new, how many come back in "
        "the weeks after their first, and how long a session lasts. From the event model "
        "(user_events, sessions).",
        [
            _chart(
                run,
                "active_users",
                f"Active users per {grain}",
                lambda fig, result: insight_charts.active_users(fig, result, grain),
                run("active_users"),
                "An active user had at least one logged-in event in the period.",
            ),
            _chart(
                run,
                "new_vs_returning",
                f"New and returning users per {grain}",
                lambda fig, result: insight_charts.new_vs_returning(fig, result, grain),
                run("new_vs_returning"),
                "New: the period of their first event ever.",
            ),
            _chart(
                run,
                "retention",
                "Weekly retention",
                insight_charts.retention,
                run("retention"),
                f"The latest {insight_charts.RETENTION_COHORTS} weekly cohorts (by first "
                "event): the share of each active in the weeks after its first.",
            ),
            _chart(
                run,
                "session_stats",
                f"Session length per {grain}",
                lambda fig, result: insight_charts.session_stats(fig, result, grain),
                run("session_stats"),
            ),
        ],
    )


def subscriptions(run: Answers) -> Section:
    grain = run.grain
    funnel = run("conversion")
    return Section(
        "subscriptions",
        "Subscriptions",
        "How free users become paying ones, and how many leave: the free -> paid funnel "
        "and the upgrades, downgrades and cancellations per period (subscription_changes).",
        [
            _chart(
                run,
                "conversion",
                "From free to paid",
                insight_charts.conversion,
                funnel,
                _time_to_upgrade(funnel),
                height=2.4,
            ),
            _chart(
                run,
                "churn",
                f"Upgrades, downgrades and cancellations per {grain}",
                lambda fig, result: insight_charts.churn(fig, result, grain),
                run("churn"),
                empty="No subscription changes in this period",
            ),
        ],
    )


def _time_to_upgrade(funnel: Result) -> str:
    days = [row for row in funnel.as_dicts() if row["median_days"] is not None]
    if not days:
        return "No upgrades in this period, so no time to upgrade."
    return (
        f"Time from the first free event to the upgrade: median {cell(days[0]['median_days'])} "
        f"days, mean {cell(days[0]['mean_days'])} days."
    )


def feedback(run: Answers) -> Section:
    feedback = run("song_feedback")
    return Section(
        "feedback",
        "Likes and devices",
        "Which songs listeners like or dislike (thumbs up and down, attributed to the song "
        "played just before), and what they listen on (parsed from the user agent).",
        [
            _chart(
                run,
                "song_feedback",
                "Most liked songs",
                insight_charts.song_feedback,
                feedback,
                height=max(2.4, 1.1 + 0.27 * min(len(feedback.rows), insight_charts.CHART_ROWS)),
                empty="No thumbs up or down in this period",
            ),
            _chart(
                run,
                "devices",
                "Sessions by browser, system and device",
                insight_charts.devices,
                run("devices"),
                height=3.4,
            ),
        ],
    )


def health(run: Answers, health: Health) -> Section:
    checks = health.checks
    failing = checks.failed
    return Section(
        "health",
        "Data health",
        "Where the numbers come from, over every load (not only the chosen days): the last "
        "loads (with the fields of the raw data that no column holds, counted per run: "
        "unknown_fields), the raw files behind them, records that were rejected (and why), "
        "and the data-quality checks on the loaded tables.",
        [
            _table(run, "recent_runs", "Last ETL runs", HEALTH_LIMIT, wide=True),
            _table(run, "files_loaded", "Files loaded"),
            _rejects(run, HEALTH_LIMIT),
            Table(
                "quality_checks",
                "Quality checks",
                ["check", "result", "severity", "failing rows", "what it verifies"],
                [(c.name, _verdict(c), c.severity, c.failing_rows, c.description) for c in checks],
                note=f"{len(checks) - len(failing)} of {len(checks)} checks without errors.",
                wide=True,
                command="sparkify check",
            ),
        ],
    )


def _verdict(check: quality.CheckOutcome) -> str:
    return "pass" if check.passed else "FAIL" if check.severity == quality.ERROR else "warn"


def _table(
    run: Answers, table_id: str, title: str, limit: int | None = None, *, wide: bool = False
) -> Table:
    """The rows of named query ``table_id``."""
    result = run(table_id, limit)
    command = run.command(table_id, limit)
    return Table(table_id, title, result.columns, result.rows, table_id, wide=wide, command=command)


_VALUE = re.compile(r"""got (['"]).*\1$""")  # the offending value a reason quotes
_NUMBER = re.compile(r"(?<![\w-])\d+\b")  # byte offsets, columns, lines; not "UTF-8"


def reason_kind(reason: str) -> str:
    """A reject reason without its particulars: "invalid UTF-8 at byte N",
    "field 'ts': expected an integer, got '…'"."""
    return _NUMBER.sub("N", _VALUE.sub(r"got \1…\1", reason))


def _rejects(run: Answers, limit: int) -> Table:
    """Rejected records by kind of reason, with the first ``limit`` rows per file and reason
    folded under it; file names relative to the folder they share."""
    by_reason, by_file = run("rejects_by_reason"), run("rejects_by_file", limit)
    kinds: Counter[str] = Counter()
    for reason, rejected, _ in by_reason.rows:
        kinds[reason_kind(reason)] += int(rejected)
    total = sum(kinds.values())
    rows = [(kind, n, round(100.0 * n / total, 1)) for kind, n in kinds.most_common()]
    prefix = _shared_folder([str(row[0]) for row in by_file.rows])
    detail = Table(
        "rejects_by_file",
        "Per file and reason",
        by_file.columns,
        [(str(row[0])[len(prefix) :], *row[1:]) for row in by_file.rows],
        "rejects_by_file",
        f"Files under {prefix}" if prefix else "",
        command=run.command("rejects_by_file", limit),
    )
    note = (
        f"{plural(total, 'record')} rejected, by reason (numbers and quoted values folded "
        "together: each exact reason is in rejects_by_reason)."
        if rows
        else "No records were rejected."
    )
    return Table(
        "rejects_by_reason",
        "Rejected records",
        ["reason", "rejected", "share_pct"],
        rows,
        "rejects_by_reason",
        note,
        detail=detail if by_file.rows else None,
    )


def _shared_folder(urls: list[str]) -> str:
    """The longest folder (ending in "/") that every URL is under."""
    shared: list[str] = []
    for parts in zip(*(url.split("/")[:-1] for url in urls), strict=False):
        if len(set(parts)) > 1:
            break
        shared.append(parts[0])
    return "/".join(shared) + "/" if shared else ""


def _coverage_text(matches: dict[str, Any]) -> list[str]:
    plays, matched = int(matches["plays"] or 0), int(matches["matched_plays"] or 0)
    catalogue, played = int(matches["catalogue_songs"]), int(matches["distinct_songs_played"])
    if not plays:
        return ["No plays are loaded yet."]
    text = [
        f"{number(matched)} of {number(plays)} plays ({percent(matches['matched_pct'])}) "
        "name a song that is in the catalogue. A play is matched on title and artist name "
        "(case and surrounding spaces ignored)."
    ]
    if played > catalogue or matched < plays:
        text.append(
            f"Listeners played {number(played)} different songs, while the catalogue holds "
            f"{number(catalogue)}: the catalogue covers only part of what people play, so "
            "the unmatched plays are songs that were never loaded into it, not lost data. "
            "Loading more song files raises the match rate."
        )
    return text


# -- charts ---------------------------------------------------------------------------------


def _chart(
    run: Answers,
    chart_id: str,
    title: str,
    draw: charts.Draw,
    result: Result,
    caption: str = "",
    *,
    query: str | None = None,
    height: float = charts.DEFAULT_HEIGHT,
    empty: str = charts.NO_DATA,
) -> Chart:
    """One chart and the numbers behind it; ``query`` names the analytics query behind it."""
    svg = charts.draw_svg(chart_id, title, draw, result, height=height, empty=empty)
    name = query or chart_id
    data = Table(chart_id, title, result.columns, result.rows, name, command=run.command(name))
    return Chart(chart_id, title, svg, data, caption)
