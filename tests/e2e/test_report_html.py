"""The HTML report in a real browser: headless Chromium renders it without console errors.

The report is made the way users make it: the CLI on a seeded database (``report daily
--store``, ``report list``, ``report show``). Screenshots (desktop and phone widths) and
an A4 PDF are saved under ``artifacts/report/`` (or ``$TRACKER_TEST_ARTIFACTS``) and their
paths printed. Needs Debian's ``chromium`` and ``fonts-noto-cjk`` (without a CJK font
Chinese shows as boxes); the test is skipped without Chromium unless
``TRACKER_REQUIRE_BROWSER`` is set, as CI sets it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration import report_seed as s
from tracker.store import migrate
from tracker.store.uow import make_engine

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
# the flags the issue asks for: no sandbox (containers), no GPU, no network chatter
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("TRACKER_REQUIRE_BROWSER"),
    reason="chromium is not installed (apt-get install chromium fonts-noto-cjk)",
)


def _artifacts() -> Path:
    path = Path(os.environ.get("TRACKER_TEST_ARTIFACTS") or ROOT / "artifacts") / "report"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tracker(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "tracker", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stored report of the golden seed, fetched back with ``tracker report show``."""
    work = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{work / 'tracker.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        s.seed(conn)
    engine.dispose()
    config = work / "tracker.toml"
    config.write_text(
        f'timezone = "Asia/Shanghai"\n[database]\nurl = "{url}"\n[shop]\nname = "示例茶叶旗舰店"\n'
        '[carriers.sandbox]\ncouriers = ["*"]\n[carriers.kd100]\nprovider = "kuaidi100"\n',
        encoding="utf-8",
    )
    made = _tracker(
        config, "report", "daily", "--date", "2026-10-10", "--now", s.NOW.isoformat(),
        "--store", "--format", "json", "--out", str(work / "report.json"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = _tracker(config, "report", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert entry["date"] == "2026-10-10" and entry["status"] == "stored"
    html = work / "report.html"
    shown = _tracker(
        config, "report", "show", str(entry["id"]), "--format", "html", "--out", str(html)
    )
    assert shown.returncode == 0, shown.stderr
    assert _tracker(config, "report", "show", "999").returncode == 1
    return html


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None, "TRACKER_REQUIRE_BROWSER is set but chromium is missing"
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console(stderr: str) -> list[str]:
    # Chromium logs every console message (errors, CSP violations) as ...:CONSOLE(...)
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_the_report_is_self_contained(report_html: Path) -> None:
    """No script and no external file: styles and charts are inline, nothing is fetched."""
    html = report_html.read_text(encoding="utf-8")
    assert "<script" not in html
    assert not re.search(r"""\b(?:src|href)\s*=\s*["'](?!#|data:)""", html)
    assert "Content-Security-Policy" in html and html.count("<svg") == 3
    assert "物流异常日报" in html and "@media print" in html and "Noto Sans CJK SC" in html


def test_chromium_renders_desktop_and_phone_without_console_errors(
    report_html: Path, tmp_path: Path
) -> None:
    """Screenshots at desktop and phone widths; Chromium reports no console message at all."""
    fonts = subprocess.run(
        ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False
    )
    assert fonts.stdout.strip(), "no CJK font installed: apt-get install fonts-noto-cjk"
    for name, size in (("desktop", "1280,2600"), ("phone", "390,2600")):
        shot = _artifacts() / f"daily-report-{name}.png"
        shot.unlink(missing_ok=True)
        run = _chromium(
            tmp_path, f"--window-size={size}", f"--screenshot={shot}", report_html.as_uri()
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert _console(run.stderr) == []
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 20_000
        print(f"screenshot: {shot}")


def test_chromium_prints_the_report_on_a4_pages(report_html: Path, tmp_path: Path) -> None:
    """Printing gives A4 pages (595 x 842 pt), several of them, and no console message."""
    pdf = _artifacts() / "daily-report.pdf"
    pdf.unlink(missing_ok=True)
    run = _chromium(
        tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", report_html.as_uri()
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert _console(run.stderr) == []
    data = pdf.read_bytes()
    sizes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert sizes and all(
        abs(float(w) - 595.9) < 2 and abs(float(h) - 842.9) < 2 for w, h in sizes
    ), sizes
    assert len(sizes) >= 2
    print(f"pdf: {pdf}")
