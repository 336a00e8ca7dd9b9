"""Every Python example in the docs runs as written: each ```python block of a page, in
order, in a fresh interpreter, in one empty folder per page (DuckDB, no server)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def examples(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def test_the_python_api_page_has_examples_for_every_method() -> None:
    text = "\n".join(examples(ROOT / "docs" / "python-api.md"))
    for call in ("connect(", ".etl(", ".check()", ".query(", ".rejects(", ".report("):
        assert call in text, call
    for call in ("generate(", ".df()", ".arrow()", "except sparkify.SparkifyError"):
        assert call in text, call


@pytest.mark.parametrize(
    "page", [p for p in PAGES if examples(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_example_runs(page: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKIFY_")}
    for number, code in enumerate(examples(page), 1):
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{page.name}, example {number}:\n{code}\n{done.stderr}"
