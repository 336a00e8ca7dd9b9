"""Deterministic synthetic Sparkify data (song_data + log_data), modelled on eventsim.

Lines are assembled from pre-escaped string fragments (no per-event ``json.dumps``)
so that a single core writes several hundred thousand events per second.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import math
import multiprocessing
import os
import re
import string
import tempfile
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate, chain
from multiprocessing.connection import Connection
from operator import itemgetter
from pathlib import Path
from random import Random

from sparkify import generate_data as wl
from sparkify.generate_data import CANCELLED, GUEST, IN, OUT

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
EVENT_KEYS = [
    "artist",
    "auth",
    "firstName",
    "gender",
    "itemInSession",
    "lastName",
    "length",
    "level",
    "location",
    "method",
    "page",
    "registration",
    "sessionId",
    "song",
    "status",
    "ts",
    "userAgent",
    "userId",
]
FAULT_TYPES = ("truncated", "invalid_json", "wrong_type", "invalid_utf8", "missing_key")

# Expected events per session of the page walk below (measured); converts
# events_per_user_day into a session arrival rate.
_MEAN_SESSION_EVENTS = 12.0
_MIN_IDLE_MS = 5 * 60_000
_PAGE_GAP_MEAN_MS = 20_000


# Users are simulated in SHARDS independent shards ((uid - 1) % SHARDS), each with its own random
# stream. Fixed, never the number of worker processes: a seed gives the same bytes whatever
# the number of processes or the machine. Worker processes start from PARALLEL_EVENTS.
SHARDS = 8
PARALLEL_EVENTS = 50_000
_DAYS_AHEAD = 3  # days a worker may simulate ahead of the parent's writing

_MAX_SESSION_EVENTS = 20_000  # longer sessions are cut (never happens in practice)
_ITEM_STRS = [str(i) for i in range(_MAX_SESSION_EVENTS)]  # itemInSession values
_PAID_SHARE, _PAID_ACTIVITY = 0.35, 2.0  # initial paid users listen more
# Relative activity by local hour of day (peak 1.0).
_DIURNAL: tuple[float, ...] = (0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.25, 0.45, 0.6, 0.7, 0.75, 0.8)
_DIURNAL += (0.85, 0.85, 0.85, 0.85, 0.9, 0.95, 1.0, 1.0, 0.95, 0.8, 0.6, 0.4)
_DIURNAL_MEAN = sum(_DIURNAL) / 24

_PAGES = (
    *((name, IN) for name in wl.LOGGED_IN_PAGES),
    ("Cancellation Confirmation", CANCELLED),
    *((name, OUT) for name in ("Home", "Login", "About", "Help", "Error")),
    *((name, GUEST) for name in ("Home", "Register", "Submit Registration", "About", "Help")),
)
_PID = {page: i for i, page in enumerate(_PAGES)}
END = -1
NEXT_SONG = _PID["NextSong", IN]
_SUBMIT_UP, _SUBMIT_DOWN = _PID["Submit Upgrade", IN], _PID["Submit Downgrade", IN]
_CONFIRM = _PID["Cancellation Confirmation", CANCELLED]
_SPECIAL = frozenset((_SUBMIT_UP, _SUBMIT_DOWN, _CONFIRM))
_PAGE_AUTH = tuple(auth for _, auth in _PAGES)


def _page_fragments(name: str) -> tuple[str, str]:
    """Return the ``method..page`` and ``status..ts`` fragments of a page."""
    redirect = name in wl.REDIRECT_PAGES
    method = "PUT" if redirect or name in ("NextSong", "Add to Playlist") else "GET"
    status = 307 if redirect else 404 if name == "Error" else 200
    return f'"{method}","page":"{name}"', f',"status":{status},"ts":'


_MID, _TAIL = zip(*(_page_fragments(name) for name, _ in _PAGES), strict=True)
_NO_SONG = tuple(('{"artist":null,"auth":', "null", ',"song":null' + tail) for tail in _TAIL)


def _distribution(page: tuple[str, int], paid: int) -> tuple[list[float], list[int]]:
    """Cumulative next-page distribution after ``page`` for a free/paid user."""
    probs: dict[int, float] = {}
    over = wl.OVERRIDES.get(page, {})
    for key, p in over.items():
        probs[END if key is None else _PID[key]] = p
    rest = 1.0 - sum(over.values())
    if rest > 1e-9:
        total = sum(w[paid] for w in wl.BASE_WEIGHTS.values())
        for name, w in wl.BASE_WEIGHTS.items():
            target = END if name is None else _PID[name, IN]
            probs[target] = probs.get(target, 0.0) + rest * w[paid] / total
    targets = [k for k, p in probs.items() if p > 0]
    cum = list(accumulate(probs[k] for k in targets))
    cum[-1] = math.inf
    return cum, targets


_TRANS = tuple(tuple(_distribution(page, paid) for page in _PAGES) for paid in (0, 1))
assert all(t[NEXT_SONG][1][0] == NEXT_SONG for t in _TRANS)  # the play loop relies on it


@dataclass(frozen=True)
class GenerateOptions:
    """Size and behaviour of a generated dataset.

    ``songs`` files are written; plays draw from ``songs * catalogue_factor`` songs, a
    ``match_rate`` share of them from the written ones. ``bad_records`` is the share of
    event lines corrupted on purpose. ``events_per_user_day`` is the mean activity.
    """

    users: int = 100
    days: int = 30
    songs: int = 500
    catalogue_factor: float = 5
    match_rate: float = 0.1
    bad_records: float = 0.0
    seed: int = 42
    start: dt.date = dt.date(2018, 11, 1)
    events_per_user_day: float = 3.0

    def __post_init__(self) -> None:
        for name in ("users", "days", "songs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("match_rate", "bad_records"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")
        if not self.catalogue_factor >= 1:
            raise ValueError(f"catalogue_factor must be >= 1, got {self.catalogue_factor}")
        if self.unwritten_songs == 0 and self.match_rate < 1:
            raise ValueError("catalogue_factor leaves no unwritten songs; need match_rate=1")
        if not self.events_per_user_day > 0:
            raise ValueError("events_per_user_day must be > 0")

    @property
    def unwritten_songs(self) -> int:
        """Catalogue songs that are played but not written to song_data."""
        return max(0, round(self.songs * self.catalogue_factor) - self.songs)


@dataclass(frozen=True)
class GenerateSummary:
    """What :func:`generate` wrote."""

    out: Path
    song_files: int
    event_files: int
    events: int
    plays: int
    users: int
    bad_records: dict[str, int]
    seconds: float
    catalogue_seconds: float = 0.0  # of ``seconds``: making and writing the song files
    catalogue_cpu_seconds: float = 0.0  # the CPU time of that (this process alone does it)
    workers: int = 1  # processes that simulated the events

    def as_dict(self) -> dict:
        """JSON-friendly dict of the summary."""
        return {
            "out": str(self.out),
            "song_files": self.song_files,
            "event_files": self.event_files,
            "events": self.events,
            "plays": self.plays,
            "users": self.users,
            "bad_records": dict(self.bad_records),
            "seconds": self.seconds,
            "catalogue_seconds": self.catalogue_seconds,
            "catalogue_cpu_seconds": self.catalogue_cpu_seconds,
            "workers": self.workers,
        }


_json_str = json.encoder.encode_basestring_ascii  # == json.dumps(str), C-accelerated


def _js(text: str) -> str:
    """JSON string literal as in the real logs (ASCII-escaped, '/' as '\\/')."""
    return _json_str(text).replace("/", "\\/")


_UPPER, _ALNUM = string.ascii_uppercase, string.ascii_uppercase + string.digits
_PAIRS = {alpha: [x + y for x in alpha for y in alpha] for alpha in (_UPPER, _ALNUM)}


def _zipf(n: int, s: float = 0.9, q: float = 2.0) -> tuple[float, float, float, float]:
    """Parameters (a, b, power, q) so that ``int((u * a + b) ** power - q)`` with
    uniform ``u`` draws ranks 0..n-1 from a continuous Zipf-Mandelbrot law."""
    b = q ** (1 - s)
    a = ((n + q) ** (1 - s) - b) * (1 - 1e-9)  # keep the top rank below n
    return a, b, 1 / (1 - s), q


class _Catalogue:
    """Written songs (with their song files) and unwritten catalogue songs (log fragments)."""

    def __init__(self, options: GenerateOptions) -> None:
        self.rng = Random(f"{options.seed}:catalogue")
        n_total = options.songs + options.unwritten_songs
        self.artists: list[tuple[str, str] | None] = [None] * max(1, n_total // 4)
        self.ids: set[str] = set()
        self.files: list[tuple[str, bytes]] = []
        self.written = [self._written_song() for _ in range(options.songs)]
        # Made up front, in rank order (not on first play): shards then see the same songs.
        self.unwritten = [self._unwritten_song() for _ in range(options.unwritten_songs)]
        # One uniform u picks both sides: u < match_rate -> written song, else unwritten.
        m = options.match_rate
        wa, wb, wp, wq = _zipf(options.songs)
        ua, ub, up, uq = _zipf(max(1, options.unwritten_songs))
        self.match = m
        self.written_zipf = (wa / m if m else 0.0, wb, wp, wq)
        self.unwritten_zipf = (ua / (1 - m) if m < 1 else 0.0, ub, up, uq)  # for u - m

    def scaled(self, top: float) -> tuple:
        """Song-pick parameters for a uniform ``u`` in [0, top): (written, zipf..., split).

        ``u < split`` picks written rank ``int((u * wa + wb) ** wp - wq)``, otherwise
        unwritten rank ``int((u * ua + ub) ** up - uq)`` (``ub`` absorbs the offset).
        """
        (wa, wb, wp, wq), (ua, ub, up, uq), m = self.written_zipf, self.unwritten_zipf, self.match
        wa, ua, split = wa / top, ua / top, m * top
        while ua and int((top * ua + ub - split * ua) ** up - uq) >= len(self.unwritten):
            ua *= 1 - 1e-9  # rounding guard for match_rate very close to 1
        return self.written, wa, wb, wp, wq, self.unwritten, ua, ub - split * ua, up, uq, split

    def _new_id(self, prefix: str, alphabet: str, mids: tuple[str, ...]) -> str:
        """Unique MSD-like 18-char id: prefix + chars of ``alphabet`` (7 in all) + mid + hex."""
        pairs, size = _PAIRS[alphabet], len(alphabet)
        while True:
            n = self.rng.getrandbits(128)
            mid = mids[n % len(mids)]
            width = 11 - len(mid)
            n, hex_part = divmod(n >> 8, 1 << (4 * width))
            n, first = divmod(n, size * size)
            n, second = divmod(n, size * size)
            head = f"{prefix}{pairs[first]}{pairs[second]}{alphabet[n % size]}"[:7]
            new = f"{head}{mid}{hex_part:0{width}X}"
            if new not in self.ids:
                self.ids.add(new)
                return new

    def _artist(self) -> tuple[str, str]:
        """Pick an artist (few prolific, many obscure): (song-file fragment, log prefix)."""
        k = int(len(self.artists) * self.rng.random() ** 2)
        artist = self.artists[k]
        if artist is None:
            artist = self.artists[k] = self._new_artist()
        return artist

    def _new_artist(self) -> tuple[str, str]:
        r = self.rng
        name = wl.artist_name(r)
        place: str
        lat: float | None
        lon: float | None
        place, lat, lon = wl.pick(r, wl.ARTIST_PLACES) if r.random() < 0.5 else ("", None, None)
        if lat is not None and r.random() < 0.2:
            lat = lon = None
        aid = self._new_id("AR", _ALNUM, ("1187B", "1187F", "1187FB"))
        lat_json, lon_json = (
            "null" if x is None else repr(round(x + r.uniform(-0.05, 0.05), 5)) for x in (lat, lon)
        )
        song_part = (
            f'"artist_id": "{aid}", "artist_latitude": {lat_json}, "artist_longitude": {lon_json}, '
            f'"artist_location": {_json_str(place)}, "artist_name": {_json_str(name)}'
        )
        return song_part, f'{{"artist":{_js(name)},"auth":'

    def _song(self) -> tuple[str, str, float, int]:
        r = self.rng
        duration = round(min(900.0, max(30.0, r.lognormvariate(5.42, 0.33))), 5)
        year = 0 if r.random() < 0.5 else min(2010, max(1955, int(2011 - abs(r.gauss(0, 12)))))
        return wl.song_title(r), repr(duration), duration, year

    def _log_tuple(self, prefix: str, title: str, length: str, duration: float) -> tuple:
        return prefix, length, f',"song":{_js(title)}{_TAIL[NEXT_SONG]}', round(duration * 1000)

    def _written_song(self) -> tuple[str, str, str, int]:
        song_part, prefix = self._artist()
        title, length, duration, year = self._song()
        # Like the Udacity subset of the Million Song Dataset, whose track ids (hence
        # song_data/A/B/C/ folders) mostly start with "TRA": few folders, many files each.
        tr = "TRA" if self.rng.random() < 0.85 else "TRB"
        track = self._new_id(tr, _UPPER, ("128F", "12903", "12A6D", "128E"))
        song_id = self._new_id("SO", _UPPER, ("12A", "12AB", "12AF"))
        body = (
            f'{{"num_songs": 1, {song_part}, "song_id": "{song_id}", "title": {_json_str(title)}, '
            f'"duration": {length}, "year": {year}}}'
        )
        self.files.append((track, body.encode()))
        return self._log_tuple(prefix, title, length, duration)

    def _unwritten_song(self) -> tuple[str, str, str, int]:
        """Log fragments of a catalogue song that song_data does not hold."""
        _, prefix = self._artist()
        title, length, duration, _ = self._song()
        return self._log_tuple(prefix, title, length, duration)


class _User:
    """Simulation state and pre-serialised profile fragments of one visitor."""

    __slots__ = ("guest", "next_start", "paid", "profiles", "rate", "tz")

    def __init__(self, profiles: tuple, tz: int, rate: float, paid: bool, guest: bool) -> None:
        self.profiles, self.tz, self.rate = profiles, tz, rate
        self.paid, self.guest, self.next_start = paid, guest, 0


def _anonymous(auth: str) -> tuple[str, str, str, str, str]:
    """Profile fragments of a logged-out or guest visitor."""
    return (
        f'"{auth}","firstName":null,"gender":null,"itemInSession":',
        ',"lastName":null,"length":',
        ',"level":"free","location":null,"method":',
        ',"registration":null,"sessionId":',
        ',"userAgent":null,"userId":""}',
    )


_LOGGED_OUT, _GUEST = _anonymous("Logged Out"), _anonymous("Guest")
_METRO_CUM = list(accumulate(w for _, _, w in wl.METROS))


def _make_user(r: Random, uid: int, t0: int, sessions_per_day: float) -> _User:
    """Draw a user profile and pre-serialise its fragments."""
    female = r.random() < 0.5
    first = wl.pick(r, wl.FIRST_NAMES_F if female else wl.FIRST_NAMES_M)
    metro, tz, _ = wl.METROS[bisect_right(_METRO_CUM, r.random() * _METRO_CUM[-1])]
    agent = wl.pick(r, wl.USER_AGENTS)
    agent = f'"{agent}"' if "," in agent else agent  # as in the real logs
    registration = t0 - HOUR_MS - int(r.random() * 60 * DAY_MS)
    paid = r.random() < _PAID_SHARE
    activity = r.lognormvariate(0.0, 0.9) / math.exp(0.405)  # mean 1
    activity *= (_PAID_ACTIVITY if paid else 1.0) / (1 + _PAID_SHARE * (_PAID_ACTIVITY - 1))
    b = f',"lastName":{_js(wl.pick(r, wl.LAST_NAMES))},"length":'
    tail = (
        f',"registration":{registration}.0,"sessionId":',
        f',"userAgent":{_js(agent)},"userId":"{uid}"}}',
    )
    levels = tuple(f',"level":"{lv}","location":{_js(metro)},"method":' for lv in ("free", "paid"))
    head = f',"firstName":{_js(first)},"gender":"{"F" if female else "M"}","itemInSession":'
    profiles = tuple(
        (
            (f'"Logged In"{head}', b, lv, *tail),
            _LOGGED_OUT,
            _GUEST,
            (f'"Cancelled"{head}', b, lv, *tail),
        )
        for lv in levels
    )
    rate = sessions_per_day * activity / DAY_MS / _DIURNAL_MEAN
    return _User(profiles, tz, rate, paid, False)


_Day = list[tuple[int, str]]  # events by time: (ms relative to the day's end, line)
_Days = tuple[_Day, int]  # a day of events and the plays simulated so far


class _Simulator:
    """Walks the sessions of one shard of the users (``uid % SHARDS``, with its own random
    stream) and buckets the serialised events by UTC day."""

    def __init__(self, options: GenerateOptions, pick_params: list[tuple], shard: int) -> None:
        self.rng = r = Random(f"{options.seed}:shard:{shard}")
        self.t0 = int(dt.datetime(*options.start.timetuple()[:3], tzinfo=dt.UTC).timestamp()) * 1000
        self.t_end = self.t0 + options.days * DAY_MS
        per_day = options.events_per_user_day / _MEAN_SESSION_EVENTS
        uids = range(shard + 1, options.users + 1, SHARDS)
        self.users = [_make_user(r, uid, self.t0, per_day) for uid in uids]
        for _ in range(shard, math.ceil(options.users / 100), SHARDS):  # guest visitors
            self.users.append(
                _User(((_GUEST,) * 4,) * 2, -6, per_day / DAY_MS / _DIURNAL_MEAN, False, True)
            )
        for user in self.users:
            user.next_start = self.next_start(user, self.t0 - _MIN_IDLE_MS)
        self.pick_params = pick_params
        # Per UTC day of session start: (ms relative to that day's end, line).
        self.buckets: list[list[tuple[int, str]]] = [[] for _ in range(options.days)]
        self.plays = 0
        self.session_id = shard + 1 - SHARDS  # this shard's ids: shard + 1 + n * SHARDS

    def next_start(self, user: _User, after: int) -> int:
        """Next session start: idle gap, thinned by the user's local hour of day."""
        rnd, t = self.rng.random, after + _MIN_IDLE_MS
        if user.rate <= 0:
            return self.t_end
        while t < self.t_end:
            t += int(self.rng.expovariate(user.rate))
            if rnd() < _DIURNAL[(t // HOUR_MS + user.tz) % 24]:
                return t
        return self.t_end

    def run_day(self, day: int) -> _Day:
        """Simulate every session starting on ``day``; return that day's events by time."""
        day_end = self.t0 + (day + 1) * DAY_MS
        for user in self.users:
            while user.next_start < day_end:
                self.session_id += SHARDS
                end = self.session(user, user.next_start)
                user.next_start = self.next_start(user, end) if user.rate else self.t_end
        events, self.buckets[day] = self.buckets[day], []
        events.sort(key=itemgetter(0))  # keys are small ints (ms before midnight): fast compares
        cut = bisect_left(events, 0, key=itemgetter(0))
        if cut < len(events):  # sessions running past midnight spill into the next day
            spill = [(key - DAY_MS, line) for key, line in events[cut:]]
            if day + 1 < len(self.buckets):
                self.buckets[day + 1] += spill
            else:  # beyond the simulated period: dropped
                self.plays -= sum('"page":"NextSong"' in line for _, line in spill)
            del events[cut:]
        return events

    def _first_page(self, user: _User) -> int:
        if user.guest:
            return _PID["Home", GUEST]
        x = self.rng.random()
        return _PID["Home", OUT] if x < 0.08 else _PID["Home", IN] if x < 0.5 else NEXT_SONG

    def session(self, user: _User, ts: int) -> int:
        """Emit one session's events into its start day's bucket; return its end time.

        Time runs as ``rel``: ms relative to the end of the start day (a small int, cheap
        to add, and the sort key; run_day moves events past midnight to the next day).
        Runs of ``NextSong`` plays take a tight inner loop.
        """
        rnd, log, bisect, sid = self.rng.random, math.log, bisect_right, str(self.session_id)
        page_auth, no_song, mids, item_iter = _PAGE_AUTH, _NO_SONG, _MID, iter(_ITEM_STRS)
        day = (ts - self.t0) // DAY_MS
        midnight = self.t0 + (day + 1) * DAY_MS
        append, rel, limit = self.buckets[day].append, ts - midnight, self.t_end - midnight
        paid, page, other = user.paid, self._first_page(user), 0
        profiles, trans, mid, stay, pick = self._level(user, paid, sid)
        written, wa, wb, wp, wq, unwritten, ua, ub, up, uq, split = pick
        try:
            while True:
                if page == NEXT_SONG:
                    a, b, _, _, e = profiles[IN]
                    u = rnd() * stay  # uniform below stay, like the draws that continue the run
                    for it in item_iter:
                        if u < split:
                            art, length, tail, gap = written[int((u * wa + wb) ** wp - wq)]
                        else:
                            art, length, tail, gap = unwritten[int((u * ua + ub) ** up - uq)]
                        append((rel, f"{art}{a}{it}{b}{length}{mid}{tail}{midnight + rel}{e}"))
                        rel += gap
                        u = rnd()
                        if u >= stay:
                            break
                    else:
                        break  # session cap reached
                    cum, targets = trans[NEXT_SONG]
                    page = targets[bisect(cum, u)]
                else:
                    a, b, level, d, e = profiles[page_auth[page]]
                    art, length, tail = no_song[page]
                    it, ts = next(item_iter), midnight + rel
                    line = f"{art}{a}{it}{b}{length}{level}{mids[page]}{d}{sid}{tail}{ts}{e}"
                    append((rel, line))
                    if page in _SPECIAL:
                        paid = page == _SUBMIT_UP if page != _CONFIRM else paid
                        profiles, trans, mid, stay, pick = self._level(user, paid, sid)
                        written, wa, wb, wp, wq, unwritten, ua, ub, up, uq, split = pick
                        user.rate = 0.0 if page == _CONFIRM else user.rate
                    cum, targets = trans[page]
                    page = targets[bisect(cum, rnd())]
                    rel += int(-log(1.0 - rnd()) * _PAGE_GAP_MEAN_MS) + 1000
                    other += 1
                if page == END or rel >= limit:
                    break
        except StopIteration:
            pass  # session cap reached
        user.paid = paid
        self.plays += int(it) + 1 - other
        return midnight + rel

    def _level(self, user: _User, paid: bool, sid: str) -> tuple:
        """Per-level session state: profiles, transitions, NextSong fragment, P(another
        play after a play) and the song-pick parameters scaled to it."""
        profiles, trans = user.profiles[paid], _TRANS[paid]
        level, d, stay = profiles[IN][2], profiles[IN][3], trans[NEXT_SONG][0][0]
        mid = f"{level}{_MID[NEXT_SONG]}{d}{sid}"
        return profiles, trans, mid, stay, self.pick_params[paid]


def _fault(line: str, kind: int, r: Random) -> str:
    """Corrupt one event line (stays a single line)."""
    if kind == 0:
        return line[: r.randrange(1, len(line) - 1)]
    if kind == 1:
        return r.choice(
            (
                line[:-1] + ",}",
                line.replace(',"auth":', ',,"auth":', 1),
                line + "}",
                line.replace('"page":', '"page" ', 1),
            )
        )
    if kind == 2:
        key, value = r.choice(
            (
                ("ts", '"yesterday"'),
                ("sessionId", '"abc"'),
                ("itemInSession", '"first"'),
                ("status", '{"code":200}'),
            )
        )
        return re.sub(f'"{key}":\\d+', f'"{key}":{value}', line, count=1)
    if kind == 3:
        return line.replace('"page":"', '"page":"\udcff\udcfe', 1)  # raw bytes via surrogateescape
    return re.sub(f',"{r.choice(("ts", "sessionId"))}":\\d+', "", line, count=1)


def _inject_faults(lines: list[str], rate: float, r: Random, counts: list[int]) -> None:
    """Replace a ``rate`` share of lines with faulty versions, counting per type."""
    rnd = r.random
    for i in range(len(lines)):
        if rnd() < rate:
            kind = r.randrange(len(FAULT_TYPES))
            lines[i] = _fault(lines[i], kind, r)
            counts[kind] += 1


def _write_bytes(path: str, data: bytes, dir_fd: int | None = None) -> None:
    """Create/overwrite ``path`` with ``data`` using raw system calls."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _write_songs(root: Path, files: list[tuple[str, bytes]]) -> int:
    """Write song_data/A/B/C/<track>.json files (one directory at a time)."""
    by_dir: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for track, data in files:
        by_dir[track[2:5]].append((track, data))
    root.mkdir(parents=True, exist_ok=True)
    for sub in sorted(by_dir):
        for depth in (1, 2, 3):
            with contextlib.suppress(FileExistsError):
                os.mkdir(f"{root}/{'/'.join(sub[:depth])}")
        dir_fd = os.open(f"{root}/{sub[0]}/{sub[1]}/{sub[2]}", os.O_RDONLY)
        try:
            for track, data in by_dir[sub]:
                _write_bytes(f"{track}.json", data, dir_fd)
        finally:
            os.close(dir_fd)
    return len(files)


def _write_day(
    out: Path, options: GenerateOptions, lines: list[str], day: int, r: Random, counts: list[int]
) -> int:
    """Write one day's event file (faults injected as configured); return its line count."""
    date = options.start + dt.timedelta(days=day)
    if options.bad_records:
        _inject_faults(lines, options.bad_records, r, counts)
    folder = out / "log_data" / f"{date:%Y}" / f"{date:%m}"
    folder.mkdir(parents=True, exist_ok=True)
    data = "\n".join(lines).encode("utf-8", "surrogateescape")
    _write_bytes(str(folder / f"{date:%Y-%m-%d}-events.json"), data)
    return len(lines)


def _simulate(options: GenerateOptions, pick_params: list[tuple], shards: range) -> Iterator[_Days]:
    """Simulate ``shards`` day by day: each day's events by time, ties by shard then by order
    within the shard (the stable sort merges the shards' sorted runs), and the plays so far."""
    sims = [_Simulator(options, pick_params, shard) for shard in shards]
    for day in range(options.days):
        events: _Day = []
        for sim in sims:
            events += sim.run_day(day)
        events.sort(key=itemgetter(0))
        yield events, sum(sim.plays for sim in sims)


def _worker(
    conn: Connection, options: GenerateOptions, pick_params: list[tuple], shards: range, path: str
) -> None:
    """Worker process: write each day of ``shards`` to a file (int64 sort keys, then the lines)
    and tell the parent its size (bulk data through files, not the pipe: no hand-offs per
    64 KiB between busy processes); or send the error that stopped it."""
    gc.disable()
    try:
        for day, (events, plays) in enumerate(_simulate(options, pick_params, shards)):
            if day >= _DAYS_AHEAD:
                conn.recv()  # the parent took day - _DAYS_AHEAD: bounds the files waiting
            keys = array("q", map(itemgetter(0), events)).tobytes()
            _write_bytes(f"{path}.{day}", keys + "\n".join(map(itemgetter(1), events)).encode())
            conn.send((len(events), plays))
    except Exception as exc:  # the parent raises it
        conn.send(RuntimeError(f"generator worker failed: {exc!r}"))
    finally:
        conn.close()


def _received(conn: Connection, days: int, path: str) -> Iterator[_Days]:
    """The days a worker simulates, as :func:`_simulate` yields them."""
    for day in range(days):
        try:
            message = conn.recv()
        except EOFError:
            raise RuntimeError("a generator worker process ended unexpectedly") from None
        if isinstance(message, BaseException):
            raise message
        count, plays = message
        with open(f"{path}.{day}", "rb") as handle:
            data = handle.read()
        os.remove(f"{path}.{day}")
        if day + _DAYS_AHEAD < days:
            conn.send(None)
        keys = array("q")
        keys.frombytes(data[: 8 * count])
        lines = data[8 * count :].decode().split("\n") if count else []
        yield list(zip(keys, lines, strict=True)), plays


def _merged(streams: list[Iterator[_Days]]) -> Iterator[tuple[list[str], int]]:
    """Each day's lines by time and the plays so far, from streams that simulate consecutive
    ranges of the shards: concatenated in shard order, a stable sort merges their runs with
    ties by shard, as within one stream."""
    for messages in zip(*streams, strict=True):
        events = list(chain.from_iterable(day for day, _ in messages))
        if len(messages) > 1:
            events.sort(key=itemgetter(0))
        yield list(map(itemgetter(1), events)), sum(plays for _, plays in messages)


@contextlib.contextmanager
def _days(
    options: GenerateOptions, pick_params: list[tuple], workers: int
) -> Iterator[Iterator[tuple[list[str], int]]]:
    """The simulated days, from ``workers`` processes (in this one if 1); the shards, not the
    workers, fix the output, so it is the same whatever the number of workers."""
    if workers <= 1:
        yield _merged([_simulate(options, pick_params, range(SHARDS))])
        return
    ctx = multiprocessing.get_context()
    procs, conns = [], []
    with tempfile.TemporaryDirectory(prefix="sparkify-generate-") as folder:
        try:
            for w in range(workers):
                mine, theirs = ctx.Pipe()
                shards = range(w * SHARDS // workers, (w + 1) * SHARDS // workers)
                args = (theirs, options, pick_params, shards, f"{folder}/{w}")
                proc = ctx.Process(target=_worker, args=args, daemon=True)
                proc.start()
                theirs.close()
                procs.append(proc)
                conns.append(mine)
            yield _merged(
                [_received(conn, options.days, f"{folder}/{w}") for w, conn in enumerate(conns)]
            )
        except BaseException:
            for proc in procs:
                proc.terminate()
            raise
        finally:
            for proc in procs:
                proc.join()
            for conn in conns:
                conn.close()


def _default_workers(options: GenerateOptions) -> int:
    """Worker processes for ``options``: one per idle core (by the load average), for datasets
    large enough. On a busy machine one process is cheaper: workers cost 7 to 25% more CPU
    time (the hand-off and the merge) and are faster only on idle cores."""
    expected = options.users * options.days * options.events_per_user_day
    cores = os.cpu_count() or 1
    return max(1, int(cores - os.getloadavg()[0] + 0.5)) if expected >= PARALLEL_EVENTS else 1


def generate(
    out: Path,
    options: GenerateOptions,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> GenerateSummary:
    """Write a synthetic Sparkify dataset under ``out``; ``progress(done, total)`` per day.

    ``workers`` processes simulate (default: one per idle core for large datasets); the files
    are byte-identical whatever their number.
    """
    gc_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived tuples and no cycles: collections only cost time
    try:
        n = _default_workers(options) if workers is None else workers
        return _generate(Path(out), options, progress, max(1, min(n, SHARDS)))
    finally:
        if gc_enabled:
            gc.enable()


def _generate(
    out: Path, options: GenerateOptions, progress: Callable[[int, int], None] | None, workers: int
) -> GenerateSummary:
    started, started_cpu = time.perf_counter(), time.process_time()
    catalogue = _Catalogue(options)
    # Written before the simulation starts, not beside it, so that the catalogue's cost stays
    # measurable on its own (the benchmark subtracts it).
    song_files = _write_songs(out / "song_data", catalogue.files)
    catalogue_seconds = time.perf_counter() - started
    catalogue_cpu_seconds = time.process_time() - started_cpu
    pick_params = [catalogue.scaled(_TRANS[paid][NEXT_SONG][0][0]) for paid in (0, 1)]
    fault_rng, counts = Random(f"{options.seed}:faults"), [0] * len(FAULT_TYPES)
    events = plays = 0
    with _days(options, pick_params, workers) as days:
        for day, (lines, plays_so_far) in enumerate(days):
            events += _write_day(out, options, lines, day, fault_rng, counts)
            plays = plays_so_far
            if progress is not None:
                progress(day + 1, options.days)
    return GenerateSummary(
        out=out,
        song_files=song_files,
        event_files=options.days,
        events=events,
        plays=plays,
        users=options.users,
        bad_records={name: n for name, n in zip(FAULT_TYPES, counts, strict=True) if n},
        seconds=time.perf_counter() - started,
        catalogue_seconds=catalogue_seconds,
        catalogue_cpu_seconds=catalogue_cpu_seconds,
        workers=workers,
    )
