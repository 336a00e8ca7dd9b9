"""The questions over every event (issue #18): exact answers on a small known dataset, the
options (--grain, --since, --until) changing them as they should, and the same answers on
DuckDB, PostgreSQL and the Redshift stand-in, on the public sample and on generated data
with faults injected.

The known dataset, four listeners over three weeks (weeks start on Monday 2018-10-29,
11-05 and 11-12) and two months; catalogue songs Alpha, Beta (Ann) and Gamma (Bob):

- Wed 10-31, session 100, Windows Chrome, 10:00-10:10: Ada (10, free) plays Alpha (thumbs
  up) and Beta (thumbs down), opens Upgrade, submits an upgrade at 10:08, is paid at 10:10.
- Wed 10-31, session 101, iPhone: a logged-out visitor's Home page.
- Thu 11-01, session 200, iPhone, 08:00-08:06: Grace (20, paid) plays Alpha (thumbs up),
  submits a downgrade, plays Beta on the free level.
- Mon 11-05, session 300, Windows Chrome, 12:00-12:01: Ada (paid) plays Alpha (thumbs up).
- Tue 11-06, session 400, Windows Chrome, 09:00-09:02: Alan (30, free) opens Upgrade, then
  cancels. Session 600, Mac Safari, 20:00-20:01: Dan (40, free) plays Gamma (thumbs up).
- Mon 11-12, session 500, iPhone, 07:00-07:12: Grace (free) plays Beta (thumbs down), Alpha,
  an unknown song (thumbs up: not counted), opens Upgrade, upgrades at 07:11, plays Alpha
  paid.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from conftest import Warehouse, _duckdb_warehouse, _postgres_warehouse, etl
from datasets import play, song, write_day, write_song
from sqlglot import exp
from test_api import connect_to
from test_redshift import aws, stand_in  # noqa: F401 (aws: the stand-in's S3)

from sparkify import analytics
from sparkify.cli.common import to_json
from sparkify.errors import ConfigError
from sparkify.generator import GenerateOptions, generate

QUESTIONS = (
    "active_users",
    "new_vs_returning",
    "retention",
    "conversion",
    "churn",
    "song_feedback",
    "devices",
    "session_stats",
)
WINDOWS = (
    '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) '
    'Chrome/36.0.1985.125 Safari/537.36"'
)
IPHONE = (
    '"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 '
    '(KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53"'
)
MAC = (
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.78.2 (KHTML, like '
    'Gecko) Version/7.0.6 Safari/537.78.2"'
)
NAMES = {10: "Ada", 20: "Grace", 30: "Alan", 40: "Dan"}


def _session(session: int, user: int | None, agent: str, *events: tuple) -> list[dict]:
    """Events of one session: (time, level, page or (title, artist)[, extra fields])."""
    written = []
    for item, (when, level, what, *extra) in enumerate(events):
        at = dt.datetime.fromisoformat(f"2018-{when}").replace(tzinfo=dt.UTC)
        fields: dict[str, Any] = {"level": level, "userAgent": agent, **(extra[0] if extra else {})}
        if isinstance(what, tuple):
            fields |= {"song": what[0], "artist": what[1], "length": 200.0}
        else:
            fields["page"] = what
        if user is None:
            fields |= {"userId": "", "firstName": None, "lastName": None, "auth": "Logged Out"}
        else:
            fields["firstName"] = NAMES[user]
        written.append(play(int(at.timestamp() * 1000), user or 0, session, item, **fields))
    return written


ALPHA, BETA, GAMMA = ("Alpha", "Ann"), ("Beta", "Ann"), ("Gamma", "Bob")


def write_dataset(root: Path) -> Path:
    """The dataset described above, as song_data/ and log_data/ under ``root``."""
    write_song(root, song("SOALPHA", "Alpha", "Ann", 200.0, artist_id="ARANN"))
    write_song(root, song("SOBETA", "Beta", "Ann", 200.0, artist_id="ARANN"))
    write_song(root, song("SOGAMMA", "Gamma", "Bob", 200.0, artist_id="ARBOB"))
    # fmt: off
    days = [
        _session(100, 10, WINDOWS,
                 ("10-31 10:00", "free", "Home"), ("10-31 10:01", "free", ALPHA),
                 ("10-31 10:02", "free", "Thumbs Up"), ("10-31 10:05", "free", BETA),
                 ("10-31 10:06", "free", "Thumbs Down"), ("10-31 10:07", "free", "Upgrade"),
                 ("10-31 10:08", "free", "Submit Upgrade"), ("10-31 10:10", "paid", "Home"))
        + _session(101, None, IPHONE, ("10-31 23:00", "free", "Home")),
        _session(200, 20, IPHONE,
                 ("11-01 08:00", "paid", ALPHA), ("11-01 08:03", "paid", "Thumbs Up"),
                 ("11-01 08:04", "paid", "Submit Downgrade"), ("11-01 08:06", "free", BETA)),
        _session(300, 10, WINDOWS,
                 ("11-05 12:00", "paid", ALPHA), ("11-05 12:01", "paid", "Thumbs Up")),
        _session(400, 30, WINDOWS,
                 ("11-06 09:00", "free", "Home"), ("11-06 09:01", "free", "Upgrade"),
                 ("11-06 09:02", "free", "Cancellation Confirmation", {"auth": "Cancelled"}))
        + _session(600, 40, MAC,
                   ("11-06 20:00", "free", GAMMA), ("11-06 20:01", "free", "Thumbs Up")),
        _session(500, 20, IPHONE,
                 ("11-12 07:00", "free", BETA), ("11-12 07:00:30", "free", "Thumbs Down"),
                 ("11-12 07:04", "free", ALPHA), ("11-12 07:08", "free", ("Unknown", "Nobody")),
                 ("11-12 07:09", "free", "Thumbs Up"), ("11-12 07:10", "free", "Upgrade"),
                 ("11-12 07:11", "free", "Submit Upgrade"), ("11-12 07:12", "paid", ALPHA)),
    ]
    # fmt: on
    for events in days:
        write_day(root, events)
    return root


@pytest.fixture
def known(warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    etl(warehouse, write_dataset(tmp_path / "data"))
    return warehouse


def answer(warehouse: Warehouse, name: str, *args: str) -> list[tuple[Any, ...]]:
    result = warehouse.cli("query", name, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return [tuple(row.values()) for row in json.loads(result.stdout)]


def columns(warehouse: Warehouse, name: str) -> list[str]:
    result = warehouse.cli("query", name, "--csv")
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()[0].split(",")


# name -> the columns of the contract (docs/queries.md), in order
COLUMNS = {
    "active_users": ["period", "active_users", "paid_users", "free_users"],
    "new_vs_returning": ["period", "new_users", "returning_users"],
    "retention": ["cohort_week", "cohort_size", "week", "users", "retained"],
    "conversion": ["step", "users", "share", "median_days", "mean_days"],
    "churn": ["period", "cancellations", "downgrades", "upgrades"],
    "song_feedback": ["title", "artist", "thumbs_up", "thumbs_down", "net"],
    "devices": ["browser", "os", "device", "users", "sessions", "plays"],
    "session_stats": ["period", "sessions", "mean_minutes", "median_minutes", "mean_plays"],
}

# (name, options) -> rows, worked out by hand from the story above
EXPECTED: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {
    ("active_users", ()): [
        ("2018-10-31", 1, 1, 1),  # Ada, free then paid
        ("2018-11-01", 1, 1, 1),
        ("2018-11-05", 1, 1, 0),
        ("2018-11-06", 2, 0, 2),  # Alan and Dan
        ("2018-11-12", 1, 1, 1),
    ],
    ("active_users", ("--grain", "week")): [
        ("2018-10-29", 2, 2, 2),
        ("2018-11-05", 3, 1, 2),
        ("2018-11-12", 1, 1, 1),
    ],
    ("active_users", ("--grain", "month")): [("2018-10-01", 1, 1, 1), ("2018-11-01", 4, 2, 3)],
    ("active_users", ("--since", "2018-11-05")): [
        ("2018-11-05", 1, 1, 0),
        ("2018-11-06", 2, 0, 2),
        ("2018-11-12", 1, 1, 1),
    ],
    ("active_users", ("--until", "2018-11-05")): [  # the last day is included
        ("2018-10-31", 1, 1, 1),
        ("2018-11-01", 1, 1, 1),
        ("2018-11-05", 1, 1, 0),
    ],
    ("new_vs_returning", ()): [
        ("2018-10-31", 1, 0),
        ("2018-11-01", 1, 0),
        ("2018-11-05", 0, 1),
        ("2018-11-06", 2, 0),
        ("2018-11-12", 0, 1),
    ],
    ("new_vs_returning", ("--grain", "week")): [
        ("2018-10-29", 2, 0),
        ("2018-11-05", 2, 1),
        ("2018-11-12", 0, 1),
    ],
    ("new_vs_returning", ("--grain", "month")): [("2018-10-01", 1, 0), ("2018-11-01", 3, 1)],
    # Ada is back, not new, on 11-05: her first event (10-31) counts, outside the range
    ("new_vs_returning", ("--since", "2018-11-05")): [
        ("2018-11-05", 0, 1),
        ("2018-11-06", 2, 0),
        ("2018-11-12", 0, 1),
    ],
    ("retention", ()): [
        ("2018-10-29", 2, 0, 2, 1.0),  # Ada and Grace
        ("2018-10-29", 2, 1, 1, 0.5),  # Ada
        ("2018-10-29", 2, 2, 1, 0.5),  # Grace
        ("2018-11-05", 2, 0, 2, 1.0),  # Alan and Dan
    ],
    ("new_vs_returning", ("--until", "2018-11-01")): [("2018-10-31", 1, 0), ("2018-11-01", 1, 0)],
    ("retention", ("--until", "2018-11-05")): [  # Alan and Dan started after the range
        ("2018-10-29", 2, 0, 2, 1.0),
        ("2018-10-29", 2, 1, 1, 0.5),
    ],
    ("retention", ("--since", "2018-11-01")): [  # Ada started before: not in a cohort
        ("2018-10-29", 1, 0, 1, 1.0),
        ("2018-10-29", 1, 2, 1, 1.0),
        ("2018-11-05", 2, 0, 2, 1.0),
    ],
    # upgrades: Ada 8 minutes after her first free event, Grace 10 d 23 h 5 min after hers
    # (11-01 08:06, not her first event): (0.0056 + 10.9618) / 2 = 5.48 days
    ("conversion", ()): [
        ("saw_free", 4, 1.0, None, None),
        ("visited_upgrade", 3, 0.75, None, None),
        ("submitted_upgrade", 2, 0.5, 5.48, 5.48),
        ("paid", 2, 0.5, None, None),
    ],
    # Grace (free from 07:00 in the range, upgraded 07:11: 11 minutes), Alan and Dan
    ("conversion", ("--since", "2018-11-02")): [
        ("saw_free", 3, 1.0, None, None),
        ("visited_upgrade", 2, 0.6667, None, None),
        ("submitted_upgrade", 1, 0.3333, 0.01, 0.01),
        ("paid", 1, 0.3333, None, None),
    ],
    ("conversion", ("--until", "2018-11-05")): [  # Ada only: 8 minutes
        ("saw_free", 2, 1.0, None, None),
        ("visited_upgrade", 1, 0.5, None, None),
        ("submitted_upgrade", 1, 0.5, 0.01, 0.01),
        ("paid", 1, 0.5, None, None),
    ],
    ("churn", ()): [
        ("2018-10-31", 0, 0, 1),
        ("2018-11-01", 0, 1, 0),
        ("2018-11-06", 1, 0, 0),
        ("2018-11-12", 0, 0, 1),
    ],
    ("churn", ("--grain", "week")): [
        ("2018-10-29", 0, 1, 1),
        ("2018-11-05", 1, 0, 0),
        ("2018-11-12", 0, 0, 1),
    ],
    ("churn", ("--grain", "month")): [("2018-10-01", 0, 0, 1), ("2018-11-01", 1, 1, 1)],
    ("churn", ("--until", "2018-11-01")): [("2018-10-31", 0, 0, 1), ("2018-11-01", 0, 1, 0)],
    ("churn", ("--since", "2018-11-06")): [("2018-11-06", 1, 0, 0), ("2018-11-12", 0, 0, 1)],
    ("song_feedback", ()): [
        ("Alpha", "Ann", 3, 0, 3),
        ("Gamma", "Bob", 1, 0, 1),
        ("Beta", "Ann", 0, 2, -2),
    ],
    ("song_feedback", ("--since", "2018-11-05")): [  # a tie on net and thumbs up: by title
        ("Alpha", "Ann", 1, 0, 1),
        ("Gamma", "Bob", 1, 0, 1),
        ("Beta", "Ann", 0, 1, -1),
    ],
    ("song_feedback", ("--until", "2018-11-01")): [
        ("Alpha", "Ann", 2, 0, 2),
        ("Beta", "Ann", 0, 1, -1),
    ],
    ("song_feedback", ("--limit", "1")): [("Alpha", "Ann", 3, 0, 3)],
    ("devices", ()): [
        ("Chrome", "Windows", "desktop", 2, 3, 3),
        ("Safari", "iOS", "mobile", 1, 3, 6),  # the visitor's session: no user
        ("Safari", "Mac OS X", "desktop", 1, 1, 1),
    ],
    ("devices", ("--since", "2018-11-06", "--until", "2018-11-06")): [  # then by plays
        ("Safari", "Mac OS X", "desktop", 1, 1, 1),
        ("Chrome", "Windows", "desktop", 1, 1, 0),
    ],
    ("session_stats", ()): [
        ("2018-10-31", 2, 5.0, 5.0, 1.0),  # 10 and 0 minutes
        ("2018-11-01", 1, 6.0, 6.0, 2.0),
        ("2018-11-05", 1, 1.0, 1.0, 1.0),
        ("2018-11-06", 2, 1.5, 1.5, 0.5),
        ("2018-11-12", 1, 12.0, 12.0, 4.0),
    ],
    ("session_stats", ("--grain", "week")): [
        ("2018-10-29", 3, 5.33, 6.0, 1.33),  # 10, 0 and 6 minutes
        ("2018-11-05", 3, 1.33, 1.0, 0.67),  # 1, 2 and 1 minutes
        ("2018-11-12", 1, 12.0, 12.0, 4.0),
    ],
    ("session_stats", ("--grain", "month", "--since", "2018-11-01")): [
        ("2018-11-01", 5, 4.4, 2.0, 1.6),  # 6, 1, 2, 1 and 12 minutes
    ],
    ("session_stats", ("--until", "2018-10-31")): [("2018-10-31", 2, 5.0, 5.0, 1.0)],
}


def test_the_questions_are_in_the_catalogue_with_the_contract_columns(known: Warehouse) -> None:
    assert [q.name for q in analytics.QUERIES if q.name in COLUMNS] == list(QUESTIONS)
    for name in QUESTIONS:
        assert columns(known, name) == COLUMNS[name], name
    assert {name for name, _ in EXPECTED} == set(QUESTIONS)


@pytest.mark.parametrize(("name", "options"), list(EXPECTED), ids=" ".join)
def test_question_answers_exactly_on_the_known_dataset(
    known: Warehouse, name: str, options: tuple[str, ...]
) -> None:
    assert answer(known, name, *options) == EXPECTED[name, options]


def test_every_option_of_every_question_has_an_answer_it_changes() -> None:
    """So that an option the SQL ignored would fail its exact answer above."""
    for name in QUESTIONS:
        changed = {
            option
            for (question, options), rows in EXPECTED.items()
            if question == name and rows != EXPECTED[name, ()]
            for option in options[::2]
        }
        assert changed == {f"--{o}" for o in analytics.get_query(name).options}, name


# -- Redshift, offline ---------------------------------------------------------------------

# What the questions may call: functions documented by Redshift (and DuckDB and PostgreSQL)
# with the same meaning, as sqlglot names them (TimestampTrunc: DATE_TRUNC, If: CASE WHEN).
PORTABLE = {"Avg", "Case", "Cast", "Count", "Extract", "Floor", "If", "Min", "Nullif"}
PORTABLE |= {"PercentileCont", "Round", "Sum", "TimestampTrunc", "And", "Or"}


@pytest.mark.parametrize("dialect", ["redshift", "postgres", "duckdb"])
def test_every_question_parses_and_calls_only_portable_functions(dialect: str) -> None:
    for name in QUESTIONS:
        sql = analytics.get_query(name).sql
        code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
        tree = sqlglot.parse_one(code, read=dialect)
        assert isinstance(tree, exp.Select), name
        called = {type(node).__name__ for node in tree.find_all(exp.Func)}
        assert called <= PORTABLE, (name, called - PORTABLE)


# -- bad options: one error line, exit code 2 --------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("active_users", "--grain", "year"), "'year' is not one of 'day', 'week', 'month'"),
        (("churn", "--since", "2018-13-01"), "--since must be a date like 2018-11-01"),
        (("churn", "--until", "yesterday"), "--until must be a date like 2018-11-01"),
        (
            ("session_stats", "--since", "2018-11-10", "--until", "2018-11-01"),
            "--since 2018-11-10 is after --until 2018-11-01",
        ),
        (("retention", "--grain", "week"), "query retention takes no --grain"),
        (("files_loaded", "--since", "2018-11-01"), "query files_loaded takes no --since"),
        (("--sql", "SELECT 1", "--since", "2018-11-01"), "--sql takes no --since"),
        (("--sql", "SELECT 1", "--grain", "week"), "--sql takes no --grain"),
        (("--sql", "SELECT 1", "--until", "2018-11-01"), "--sql takes no --until"),
    ],
)
def test_a_bad_option_is_one_error_line_and_exit_2(
    known: Warehouse, args: tuple[str, ...], message: str
) -> None:
    result = known.cli("query", *args)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line


# -- the same answers on every backend ----------------------------------------------------

# options that exercise every grain and a range
VARIANTS: tuple[tuple[str, ...], ...] = ((), ("--grain", "week"), ("--grain", "month"))


def every_answer(warehouse: Warehouse, since: str) -> dict[tuple[str, ...], str]:
    """Each question's JSON text, as printed, under each variant and from ``since`` on."""
    printed = {}
    for name in QUESTIONS:
        query = analytics.get_query(name)
        variants = VARIANTS if query.grained else ((),)
        for options in (*variants, ("--since", since)):
            result = warehouse.cli("query", name, "--json", "--limit", "1000", *options)
            assert result.exit_code == 0, result.stderr
            printed[name, *options] = result.stdout
    return printed


@pytest.fixture
def faulty(tmp_path: Path) -> Path:
    """Generated data over three weeks, with 2% of the event lines broken."""
    out = tmp_path / "faulty"
    options = GenerateOptions(users=60, days=21, songs=150, seed=7, bad_records=0.02)
    generate(out, options)
    return out


@pytest.mark.parametrize(("dataset", "since"), [("sample_data", "2018-11-15"), ("faulty", "")])
def test_every_backend_gives_the_same_answers(
    request: pytest.FixtureRequest,
    dataset: str,
    since: str,
    postgres_dsn: str,
    aws: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    data = request.getfixturevalue(dataset)
    since = since or _middle_day(data)
    warehouses = [
        _duckdb_warehouse(tmp_path),
        _postgres_warehouse(postgres_dsn),
        stand_in(postgres_dsn, monkeypatch),
    ]
    answers = {}
    for warehouse in warehouses:
        etl(warehouse, data)
        answers[warehouse.name] = every_answer(warehouse, since)
    reference = answers["duckdb"]
    assert answers["postgres"] == reference
    assert answers["redshift"] == reference
    if dataset == "faulty":  # every question has rows on generated data
        for key, printed in reference.items():
            assert json.loads(printed), key


def _middle_day(data: Path) -> str:
    days = sorted(p.name[:10] for p in (data / "log_data").rglob("*.json"))
    return days[len(days) // 2]


# -- the same options from Python -----------------------------------------------------------


def test_the_python_api_takes_the_same_options(known: Warehouse) -> None:
    with connect_to(known) as api:
        weekly = api.query("session_stats", grain="week")
        ranged = api.query("devices", since=dt.date(2018, 11, 6), until="2018-11-06")
        with pytest.raises(ConfigError) as bad_grain:
            api.query("active_users", grain="year")
        with pytest.raises(ConfigError) as not_taken:
            api.query("retention", grain="week")
        with pytest.raises(ConfigError) as backwards:
            api.query("churn", since="2018-11-10", until="2018-11-01")
    as_printed = json.loads(to_json(weekly))
    assert [tuple(row.values()) for row in as_printed] == EXPECTED[
        "session_stats", ("--grain", "week")
    ]
    assert weekly.columns == COLUMNS["session_stats"]
    devices = EXPECTED["devices", ("--since", "2018-11-06", "--until", "2018-11-06")]
    assert ranged.tuples() == devices
    assert bad_grain.value.exit_code == not_taken.value.exit_code == backwards.value.exit_code == 2
    assert str(bad_grain.value) == "grain must be one of day, week, month, got 'year'"
    assert str(not_taken.value) == "query retention takes since, until; got grain"
    assert str(backwards.value) == "since 2018-11-10 is after until 2018-11-01"
