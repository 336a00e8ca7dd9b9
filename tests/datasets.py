"""Small hand-made datasets in the public layout, for exact-answer tests."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import orjson

DAY_MS = 86_400_000
NOV_1 = 1541030400000  # 2018-11-01T00:00:00Z


def song(song_id: str, title: str, artist_name: str, duration: float, **extra: Any) -> dict:
    record = {
        "num_songs": 1,
        "artist_id": extra.pop("artist_id", "AR" + song_id[2:]),
        "artist_latitude": None,
        "artist_longitude": None,
        "artist_location": "",
        "artist_name": artist_name,
        "song_id": song_id,
        "title": title,
        "duration": duration,
        "year": 2000,
    }
    record.update(extra)
    return record


def write_song(root: Path, record: dict, name: str | None = None) -> Path:
    name = name or record["song_id"]
    path = root / "song_data" / "A" / "B" / "C" / f"TR{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(record))
    return path


def play(ts: int, user: int, session: int, item: int, **extra: Any) -> dict:
    record = {
        "artist": None,
        "auth": "Logged In",
        "firstName": f"First{user}",
        "gender": "F",
        "itemInSession": item,
        "lastName": f"Last{user}",
        "length": None,
        "level": "free",
        "location": "Somewhere, ST",
        "method": "PUT",
        "page": "NextSong",
        "registration": 1540000000000.0,
        "sessionId": session,
        "song": None,
        "status": 200,
        "ts": ts,
        "userAgent": "Agent",
        "userId": str(user),
    }
    record.update(extra)
    return record


def write_day(root: Path, events: list[dict], raw_lines: list[bytes] = ()) -> Path:  # type: ignore[assignment]
    """Write events into the day file of their first timestamp (appending raw lines)."""
    day = dt.datetime.fromtimestamp(events[0]["ts"] / 1000, dt.UTC).date()
    path = root / "log_data" / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}-events.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [orjson.dumps(e) for e in events] + list(raw_lines)
    path.write_bytes(b"\n".join(lines))
    return path


def copy_days(source: Path, target: Path, days: list[str]) -> Path:
    """Copy the song files and the event files of the given days (``2018-11-03``)."""
    shutil.copytree(source / "song_data", target / "song_data", dirs_exist_ok=True)
    for path in sorted((source / "log_data").rglob("*.json")):
        if any(path.name.startswith(day) for day in days):
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
    return target


def event_days(source: Path) -> list[str]:
    return sorted(p.name[:10] for p in (source / "log_data").rglob("*.json"))


# The event model's parsing rules (docs/model.md), one case per rule and per known limit:
# (user agent text, browser, os, device) and (location text, metro_area, city, state, states).
USER_AGENTS = (
    (
        '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) '
        'Chrome/36.0.1985.143 Safari/537.36"',
        "Chrome", "Mac OS X", "desktop",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36",
        "Chromium", "Linux", "desktop",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:31.0) Gecko/20100101 Firefox/31.0",
        "Firefox", "Mac OS X", "desktop",
    ),
    (
        "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; WOW64; Trident/6.0)",
        "Internet Explorer", "Windows", "desktop",
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "Internet Explorer", "Windows", "desktop",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/42.0.2311.135 Safari/537.36 Edge/12.10136",
        "Edge", "Windows", "desktop",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 "
        "(KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53",
        "Safari", "iOS", "mobile",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 7_0 like Mac OS X) AppleWebKit/537.51.1 (KHTML, like Gecko) "
        "Version/7.0 Mobile/11A465 Safari/9537.53",
        "Safari", "iOS", "tablet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 4.4.2; Nexus 5 Build/KOT49H) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/32.0.1700.99 Mobile Safari/537.36",
        "Chrome", "Android", "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 4.4.2; Nexus 7 Build/KOT49H) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/32.0.1700.99 Safari/537.36",
        "Chrome", "Android", "tablet",
    ),
    ("Googlebot/2.1 (+http://www.google.com/bot.html)", "Other", "Other", "other"),
)  # fmt: skip
LOCATIONS = (
    ("New York-Newark-Jersey City, NY-NJ-PA", "New York-Newark-Jersey City", "New York", "NY",
     "NY-NJ-PA"),
    ("Nashville-Davidson--Murfreesboro--Franklin, TN",
     "Nashville-Davidson--Murfreesboro--Franklin", "Nashville", "TN", "TN"),
    ("St. Louis, MO-IL", "St. Louis", "St. Louis", "MO", "MO-IL"),
    # a city with a hyphen in its name is cut at the hyphen
    ("Winston-Salem, NC", "Winston-Salem", "Winston", "NC", "NC"),
    # only the last ", " separates the states
    ("Paris, Île-de-France, FR", "Paris, Île-de-France", "Paris, Île", "FR", "FR"),
    ("São Paulo-Guarulhos, SP-MG", "São Paulo-Guarulhos", "São Paulo", "SP", "SP-MG"),
    ("Zürich", "Zürich", "Zürich", None, None),
    ("Nowhere, ", "Nowhere", "Nowhere", None, None),
)  # fmt: skip


def write_model_events(root: Path) -> Path:
    """Sessions with every kind of event the model tells apart, and every user agent and
    location above: a session of user 1 (a play, a thumb up, an upgrade, a play of an
    unknown song, a thumb down, an event without level, location or agent), a logged-out
    session, and a session of user 2 (a thumb before any play, a downgrade, a cancellation),
    then one event per parsing case."""
    write_song(root, song("SO1", "Song One", "The Band", 200.0))
    t = NOV_1 + 10 * 3_600_000  # 2018-11-01 10:00 UTC
    agent, place = USER_AGENTS[6][0], LOCATIONS[0][0]
    mine = {"userAgent": agent, "location": place}
    events = [
        play(t, 1, 10, 0, song="Song One", artist="The Band", length=200.0, **mine),
        play(t + 1000, 1, 10, 1, page="Thumbs Up", **mine),
        play(t + 2000, 1, 10, 2, page="Submit Upgrade", **mine),
        play(t + 3000, 1, 10, 3, level="paid", song="Unknown", artist="Nobody", **mine),
        play(t + 4000, 1, 10, 4, level="paid", page="Thumbs Down", **mine),
        play(t + 5000, 1, 10, 5, level=None, page="Settings", location=None, userAgent=None),
        play(t + 6000, 0, 11, 0, page="Home", userId="", auth="Logged Out", location=None,
             userAgent=None),
        play(t + 7000, 2, 12, 0, level="paid", page="Thumbs Down"),
        play(t + 8000, 2, 12, 1, level="paid", page="Submit Downgrade"),
        play(t + 9000, 2, 12, 2, level="paid", page="Cancellation Confirmation",
             auth="Cancelled"),
    ]  # fmt: skip
    cases = [
        *((a, LOCATIONS[0][0]) for a, *_ in USER_AGENTS),
        *((USER_AGENTS[0][0], p) for p, *_ in LOCATIONS),
    ]
    events += [
        play(t + 60_000 + n, 3, 20 + n, 0, page="Home", userAgent=a, location=p)
        for n, (a, p) in enumerate(cases)
    ]
    return write_day(root, events)
