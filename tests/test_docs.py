"""Every ```python block of README.md and docs/*.md runs, in order, one namespace per page.

A block preceded by ``<!-- requires: utkface -->`` needs the real UTKFace images
and is skipped where they are absent; ``<!-- requires: module -->`` (such as
tensorboard) needs that module and is skipped where it is not installed;
``<!-- skip: reason -->`` marks a block that is shown but not run (the reason is
printed in the test report).
"""

import importlib.util
import re

import pytest

from .conftest import REPO, UTKFACE

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?P<marker><!--\s*(?P<kind>requires|skip):\s*(?P<what>[^>]*?)\s*-->\s*\n)?```python\n(?P<code>.*?)```",
    re.DOTALL,
)


def blocks(page):
    for match in BLOCK.finditer(page.read_text()):
        line = page.read_text()[: match.start("code")].count("\n") + 1
        yield line, match["kind"], (match["what"] or "").strip(), match["code"]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_code_blocks_run(page, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(REPO)
    namespace = {"__name__": f"docs_{page.stem}"}
    skipped = []
    ran = 0
    for line, kind, what, code in blocks(page):
        if kind == "skip":
            skipped.append(f"line {line}: {what}")
            continue
        if kind == "requires" and "utkface" in what and not (UTKFACE / "labels.csv").exists():
            skipped.append(f"line {line}: needs the UTKFace images at {UTKFACE}")
            continue
        if kind == "requires" and "utkface" not in what and importlib.util.find_spec(what) is None:
            skipped.append(f"line {line}: needs {what}, which is not installed")
            continue
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page.name}, block at line {line} failed: {exc!r}") from exc
        ran += 1
    if skipped and not ran:
        pytest.skip("; ".join(skipped))
