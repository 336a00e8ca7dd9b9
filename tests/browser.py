"""Headless Chromium for the report's tests, driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``): no extra packages, and exact console, network and dialog events.
Screenshots go to ``test-artifacts/`` at the repository root (ignored by git), for review.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LAPTOP = {"width": 1280, "height": 800, "mobile": False}
PHONE = {"width": 390, "height": 844, "mobile": True}


@dataclass
class Visit:
    """What a page did while loading: console messages, requests, failures, dialogs."""

    session: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    loaded: bool = False


class Chromium:
    """Headless Chromium over the DevTools protocol on fds 3 (commands) and 4 (replies)."""

    FLAGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--remote-debugging-pipe",
    )

    def __init__(self, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def child_fds() -> None:
            os.dup2(commands_read, 3)
            os.dup2(replies_write, 4)

        self.process = subprocess.Popen(
            [str(CHROMIUM), *self.FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4),
            preexec_fn=child_fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self._visits: dict[str, Visit] = {}

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self._record(reply)

    def _receive(self, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._replies], [], [], deadline - time.monotonic())
            chunk = os.read(self._replies, 1 << 16) if ready else b""
            if not chunk:
                raise TimeoutError("Chromium stopped answering")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _record(self, event: dict) -> None:
        visit = self._visits.get(event.get("sessionId", ""))
        method, params = event.get("method"), event.get("params", {})
        if visit is None:
            return
        if method == "Runtime.consoleAPICalled":
            visit.errors.append(f"console.{params['type']}: {params['args']}")
        elif method == "Runtime.exceptionThrown":
            visit.errors.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            visit.errors.append(f"log: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            visit.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            visit.errors.append(f"request failed: {params['errorText']}")
        elif method == "Page.javascriptDialogOpening":
            visit.dialogs.append(params["message"])
            self.call("Page.handleJavaScriptDialog", {"accept": False}, visit.session)
        elif method == "Page.loadEventFired":
            visit.loaded = True

    def visit(self, url: str, width: int, height: int, mobile: bool) -> Visit:
        """Open ``url`` in a fresh tab at this viewport and wait for the load event."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        visit = self._visits.setdefault(session["sessionId"], Visit(session["sessionId"]))
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=visit.session)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
        self.call("Emulation.setDeviceMetricsOverride", metrics, visit.session)
        self.call("Page.navigate", {"url": url}, visit.session)
        deadline = time.monotonic() + 20
        while not visit.loaded and time.monotonic() < deadline:
            self._record(self._receive())
        assert visit.loaded, f"{url} did not finish loading"
        return visit

    def evaluate(self, visit: Visit, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, visit.session
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def hover(self, visit: Visit, x: float, y: float) -> None:
        """Move the mouse to (x, y) in the viewport, as a user's pointer would."""
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y}, visit.session)

    def screenshot(self, visit: Visit, path: Path) -> Path:
        shot = self.call(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True},
            visit.session,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.process.wait(timeout=10)
        except (OSError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._commands)
            os.close(self._replies)
