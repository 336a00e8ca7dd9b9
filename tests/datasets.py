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
