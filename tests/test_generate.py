"""Tests for the synthetic Sparkify dataset generator."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from sparkify import generator as generate_module
from sparkify.generator import EVENT_KEYS, FAULT_TYPES, GenerateOptions, GenerateSummary, generate

SONG_KEYS = [
    "num_songs",
    "artist_id",
    "artist_latitude",
    "artist_longitude",
    "artist_location",
    "artist_name",
    "song_id",
    "title",
    "duration",
    "year",
]
ANON_FIELDS = ("firstName", "lastName", "gender", "location", "userAgent", "registration")
NULL = type(None)
EVENT_TYPES: dict[str, tuple[type, ...]] = {
    "artist": (str, NULL),
    "auth": (str,),
    "firstName": (str, NULL),
    "gender": (str, NULL),
    "itemInSession": (int,),
    "lastName": (str, NULL),
    "length": (float, NULL),
    "level": (str,),
    "location": (str, NULL),
    "method": (str,),
    "page": (str,),
    "registration": (float, NULL),
    "sessionId": (int,),
    "song": (str, NULL),
    "status": (int,),
    "ts": (int,),
    "userAgent": (str, NULL),
    "userId": (str,),
}
SMALL = GenerateOptions(users=100, days=14, songs=200, seed=7)


def _strict(raw: bytes) -> dict | None:
    """Parse one event line strictly; None when it is not a valid, well-typed event."""
    try:
        event = json.loads(raw.decode("utf-8"))
    except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
        return None
    if not isinstance(event, dict) or list(event) != EVENT_KEYS:
        return None
    for key, types in EVENT_TYPES.items():
        value = event[key]
        if isinstance(value, bool) or not isinstance(value, types):
            return None
    ok = event["level"] in ("free", "paid") and event["method"] in ("GET", "PUT")
    return event if ok and event["status"] in (200, 307, 404) else None


def _event_files(out: Path) -> list[Path]:
    return sorted((out / "log_data").rglob("*.json"))


def _events(out: Path) -> list[dict]:
    """All events of a fault-free dataset, each tagged with its file's date."""
    events = []
    for path in _event_files(out):
        for raw in path.read_bytes().split(b"\n") if path.stat().st_size else []:
            event = _strict(raw)
            assert event is not None, raw
            event["_file_date"] = path.name[:10]
            events.append(event)
    return events


def _songs(out: Path) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_bytes())) for p in sorted((out / "song_data").rglob("*.json"))]


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _sessions(events: list[dict]) -> dict[int, list[dict]]:
    sessions: dict[int, list[dict]] = defaultdict(list)
    for event in events:
        sessions[event["sessionId"]].append(event)
    return {sid: sorted(evs, key=lambda e: e["ts"]) for sid, evs in sessions.items()}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary, list[dict]]:
    out = tmp_path_factory.mktemp("small")
    summary = generate(out, SMALL)
    return out, summary, _events(out)


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path: Path) -> None:
    options = GenerateOptions(users=20, days=3, songs=40, seed=3, bad_records=0.05)
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(first, options)
    generate(second, options)
    generate(other, GenerateOptions(users=20, days=3, songs=40, seed=4, bad_records=0.05))
    assert _tree(first) == _tree(second)
    tree, other_tree = _tree(first), _tree(other)
    assert tree.keys() != other_tree.keys() or tree != other_tree
    log = "log_data/2018/11/2018-11-01-events.json"
    assert tree[log] != other_tree[log]


def test_output_is_byte_identical_whatever_the_number_of_worker_processes(tmp_path: Path) -> None:
    options = GenerateOptions(users=50, days=4, songs=40, seed=5, bad_records=0.05)
    summaries = {n: generate(tmp_path / str(n), options, workers=n) for n in (1, 2, 3, 8)}
    trees = {n: _tree(tmp_path / str(n)) for n in summaries}
    assert len(trees[1]) == 40 + 4 and all(tree == trees[1] for tree in trees.values())
    figures = {(s.events, s.plays, tuple(s.bad_records.items())) for s in summaries.values()}
    assert len(figures) == 1 and summaries[1].events > 500


def test_events_of_one_millisecond_keep_the_shard_order_whatever_the_workers(
    tmp_path: Path,
) -> None:
    # Dense enough that users of different shards act in the same millisecond: such ties are
    # ordered by shard ((uid - 1) % 8), never by the worker process that simulated the shard.
    options = GenerateOptions(users=400, days=2, songs=40, seed=5, events_per_user_day=60)
    for n in (1, 2, 3, 8):
        generate(tmp_path / str(n), options, workers=n)
    ties = 0
    for path in _event_files(tmp_path / "1"):
        shards_by_ts: dict[int, list[int]] = defaultdict(list)
        for event in map(json.loads, path.read_bytes().splitlines()):
            if event["userId"]:
                shards_by_ts[event["ts"]].append((int(event["userId"]) - 1) % 8)
        for shards in shards_by_ts.values():
            ties += len(set(shards)) > 1
            assert shards == sorted(shards)
    assert ties >= 3
    trees = {n: _tree(tmp_path / str(n)) for n in (1, 2, 3, 8)}
    assert all(tree == trees[1] for tree in trees.values())


def test_a_failing_worker_process_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, day: int) -> None:
        raise OSError("simulated failure")

    monkeypatch.setattr(generate_module._Simulator, "run_day", broken)
    with pytest.raises(RuntimeError, match="simulated failure"):
        generate(tmp_path, GenerateOptions(users=20, days=2, songs=10), workers=2)


def test_song_files_layout_keys_and_types(small: tuple) -> None:
    out, summary, _ = small
    songs = _songs(out)
    assert summary.song_files == len(songs) == SMALL.songs
    for path, song in songs:
        track = path.stem
        assert re.fullmatch(r"TR[A-Z0-9]{16}", track)
        assert path.parent.relative_to(out / "song_data").parts == (track[2], track[3], track[4])
        assert list(song) == SONG_KEYS
        assert song["num_songs"] == 1
        assert re.fullmatch(r"AR[A-Z0-9]{16}", song["artist_id"])
        assert re.fullmatch(r"SO[A-Z0-9]{16}", song["song_id"])
        assert isinstance(song["duration"], float) and song["duration"] > 0
        assert isinstance(song["year"], int) and not isinstance(song["year"], bool)
        assert isinstance(song["artist_location"], str) and isinstance(song["artist_name"], str)
        for key in ("artist_latitude", "artist_longitude"):
            assert song[key] is None or isinstance(song[key], float)
    assert len({song["song_id"] for _, song in songs}) == len(songs)
    years = [song["year"] for _, song in songs]
    assert 0.3 < years.count(0) / len(years) < 0.7


def test_names_look_plausible(tmp_path: Path) -> None:
    generate(tmp_path, GenerateOptions(users=1, days=1, songs=400))
    names = [s["artist_name"] + " " + s["title"] for _, s in _songs(tmp_path)]
    assert any(not n.isascii() for n in names)
    assert any("'" in n for n in names) and any("&" in n for n in names)
    assert any(any(ch.isdigit() for ch in n) for n in names)


def test_event_files_layout_and_order(small: tuple) -> None:
    out, summary, events = small
    files = _event_files(out)
    dates = [SMALL.start + dt.timedelta(days=i) for i in range(SMALL.days)]
    expected = [out / "log_data" / f"{d:%Y/%m/%Y-%m-%d}-events.json" for d in dates]
    assert files == expected and summary.event_files == len(files)
    assert summary.events == len(events) > 1000
    assert summary.plays == sum(e["page"] == "NextSong" for e in events)
    for path in files:
        data = path.read_bytes()
        assert not data.endswith(b"\n")
        ts = [_strict(raw)["ts"] for raw in data.split(b"\n")]
        assert ts == sorted(ts)
    for event in events:
        date = dt.datetime.fromtimestamp(event["ts"] / 1000, dt.UTC).date()
        assert date.isoformat() == event["_file_date"]


def test_event_semantics(small: tuple) -> None:
    out, _, events = small
    raw = next(iter(_event_files(out))).read_text()
    assert "\\/" in raw and '\\"Mozilla' in raw  # escaped like the real logs
    for event in events:
        song_page = event["page"] == "NextSong"
        assert (event["song"] is not None) == song_page == (event["length"] is not None)
        assert (event["artist"] is not None) == song_page
        redirect = event["status"] == 307 or song_page or event["page"] == "Add to Playlist"
        assert event["method"] == ("PUT" if redirect else "GET")
        assert (event["status"] == 404) == (event["page"] == "Error")
        if event["auth"] in ("Logged Out", "Guest"):
            assert event["userId"] == "" and event["level"] == "free"
            assert all(event[key] is None for key in ANON_FIELDS)
        else:
            assert event["auth"] in ("Logged In", "Cancelled")
            assert event["userId"].isdigit()
            assert all(event[key] is not None for key in ANON_FIELDS)
            assert event["gender"] in ("F", "M")
            assert event["registration"] < event["ts"]
    pages = {event["page"] for event in events}
    assert {"NextSong", "Home", "Login", "Logout", "Thumbs Up", "Roll Advert"} <= pages
    assert 0.7 < sum(e["page"] == "NextSong" for e in events) / len(events) < 0.9


def test_sessions_count_items_and_keep_one_user(small: tuple) -> None:
    _, _, events = small
    sessions = _sessions(events)
    assert len(sessions) > 100
    for session in sessions.values():
        assert [e["itemInSession"] for e in session] == list(range(len(session)))
        assert len({e["userId"] for e in session} - {""}) <= 1


def test_next_event_after_a_song_arrives_when_it_ends(small: tuple) -> None:
    _, _, events = small
    checked = 0
    for session in _sessions(events).values():
        for prev, nxt in itertools.pairwise(session):
            if prev["page"] == "NextSong":
                assert abs(nxt["ts"] - prev["ts"] - prev["length"] * 1000) <= 1
                checked += 1
            else:
                assert 1000 <= nxt["ts"] - prev["ts"] < 30 * 60_000
    assert checked > 1000


def test_level_changes_only_after_submissions(small: tuple) -> None:
    _, _, events = small
    by_user: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        if event["userId"]:
            by_user[event["userId"]].append(event)
    changes = 0
    for user_events in by_user.values():
        user_events.sort(key=lambda e: e["ts"])
        for prev, nxt in itertools.pairwise(user_events):
            if prev["page"] == "Submit Upgrade":
                assert (prev["level"], nxt["level"]) == ("free", "paid")
            elif prev["page"] == "Submit Downgrade":
                assert (prev["level"], nxt["level"]) == ("paid", "free")
            else:
                assert prev["level"] == nxt["level"]
            changes += prev["level"] != nxt["level"]
    assert changes >= 1


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 1.0])
def test_match_rate_is_honoured(tmp_path: Path, rate: float) -> None:
    generate(tmp_path, GenerateOptions(users=60, days=8, songs=150, match_rate=rate, seed=11))
    catalogue = {(s["title"], s["artist_name"], s["duration"]) for _, s in _songs(tmp_path)}
    plays = [e for e in _events(tmp_path) if e["page"] == "NextSong"]
    matched = sum((e["song"], e["artist"], e["length"]) in catalogue for e in plays)
    assert len(plays) > 800
    assert abs(matched / len(plays) - rate) < 0.05


def test_bad_records_are_counted_exactly(tmp_path: Path) -> None:
    summary = generate(tmp_path, GenerateOptions(users=40, days=5, songs=50, bad_records=0.2))
    lines = [raw for p in _event_files(tmp_path) for raw in p.read_bytes().split(b"\n")]
    assert len(lines) == summary.events
    failed = sum(_strict(raw) is None for raw in lines)
    assert set(summary.bad_records) == set(FAULT_TYPES)
    assert sum(summary.bad_records.values()) == failed
    assert 0.15 < failed / len(lines) < 0.25
    assert min(summary.bad_records.values()) > 0.1 * failed
    with pytest.raises(UnicodeDecodeError):
        b"\n".join(lines).decode("utf-8")


def test_summary_and_progress(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    summary = generate(
        tmp_path,
        GenerateOptions(users=5, days=3, songs=5),
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    data = json.loads(json.dumps(summary.as_dict()))
    assert data["out"] == str(tmp_path) and data["bad_records"] == {}
    assert data["users"] == 5 and data["event_files"] == 3 and data["song_files"] == 5
    assert 0 <= summary.catalogue_seconds <= summary.seconds
    assert data["workers"] == 1 and data["catalogue_seconds"] == summary.catalogue_seconds
    two = generate(tmp_path / "two", GenerateOptions(users=5, days=3, songs=5), workers=2)
    assert two.workers == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"users": 0},
        {"days": 0},
        {"songs": 0},
        {"match_rate": -0.1},
        {"match_rate": 1.5},
        {"bad_records": 1.01},
        {"catalogue_factor": 0.5},
        {"catalogue_factor": 1, "match_rate": 0.5},
        {"events_per_user_day": 0},
    ],
)
def test_invalid_options_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        GenerateOptions(**kwargs)
