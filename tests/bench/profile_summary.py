"""Where the CPU goes: a py-spy speedscope profile folded by pipeline step and by library.

``python -m tests.bench.profile_summary PROFILE.speedscope.json [--cpu-s S --items N]``

Every sample is put in one *step* (the innermost pipeline marker on its stack: claim,
provider request + parse, save_result, detection on touched orders, the periodic pass,
dispatch, start-up) and one *category* (the innermost frame from a known library or
package: SQLAlchemy, the database driver, httpx, aiohttp, asyncio, JSON, the location
parser, structlog...). With ``--cpu-s`` and ``--items`` (the process's CPU seconds and the
parcels it polled) shares are also shown as microseconds per parcel.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Frame", "classify", "fold", "main"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame of a profile."""

    name: str
    file: str


# (category, path fragments); the first category whose fragment is in a frame's file wins
_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("db driver + database", ("psycopg/", "psycopg_pool/", "sqlite3/")),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("httpx (+httpx-aiohttp)", ("httpx/", "httpx_aiohttp/", "httpcore/")),
    ("aiohttp", ("aiohttp/", "multidict/", "yarl/")),
    ("asyncio", ("asyncio/", "selectors.py")),
    ("JSON", ("/json/",)),
    ("location parser (carriers/geo)", ("carriers/geo.py",)),
    ("Kuaidi100 parse/sign/codes", ("carriers/kuaidi100/",)),
    ("transport (guard, retry)", ("carriers/transport/",)),
    ("tracking model", ("carriers/model.py",)),
    ("logging (structlog, stdlib)", ("structlog/", "/logging/")),
    ("templates (jinja2)", ("jinja2/", "markupsafe/")),
    ("rules + policy (tracker/domain)", ("tracker/domain/",)),
    ("store (tracker/store)", ("tracker/store/",)),
    ("services (tracker/service, daemon)", ("tracker/service/", "tracker/daemon/")),
    ("notify", ("tracker/notify/",)),
    ("imports", ("importlib._bootstrap",)),
)
# functions where the database itself (or the driver's C code) does the work
_DB_CALLS = frozenset({"do_execute", "do_executemany", "do_execute_no_params", "_exec_execute"})


def _category(frame: Frame) -> str | None:
    if frame.name.rsplit(".", 1)[-1] in _DB_CALLS:
        return "db driver + database"
    if frame.file.endswith(("threading.py", "selectors.py")) and frame.name.endswith(
        ("wait", "select")
    ):
        return "waiting (not CPU)"
    for category, fragments in _CATEGORIES:
        if any(fragment in frame.file for fragment in fragments):
            return category
    return None


def _step(stack: Sequence[Frame]) -> str:
    step = None
    in_poll = in_pass = False
    for frame in stack:  # root first: the innermost marker wins
        name, file = frame.name.rsplit(".", 1)[-1], frame.file  # py-spy: "Class.method"
        if file.endswith("tracker/service/poll.py") and name == "run_once":
            in_poll = True
        elif name in ("run_due", "_detect_pass"):
            in_pass = True
        if name == "claim_due_shipments":
            step = "claim"
        elif name in ("save_result", "save_results"):
            step = "save_result"
        elif (file.endswith("tracker/service/poll.py") and name in ("run_chunk", "_track_all")) or (
            "/carriers/" in file
        ):
            step = "provider request + parse"
        elif file.endswith("tracker/service/detect.py") and name == "run":
            step = (
                "detect (pass)" if in_pass else "detect (touched orders)" if in_poll else "detect"
            )
        elif "tracker/service/dispatch" in file:
            step = "dispatch"
        elif "tracker/report/" in file:
            step = "report"
    if step:
        return step
    if any("importlib._bootstrap" in f.file for f in stack):
        return "start-up imports"
    if any("aiohttp/" in f.file or "httpx" in f.file for f in stack):
        return "HTTP I/O callbacks (event loop)"
    if in_poll:
        return "poll loop (other)"
    return "other"


def classify(stack: Sequence[Frame]) -> tuple[str, str]:
    """(step, category) of one sample; ``stack`` is root first."""
    for frame in reversed(stack):
        category = _category(frame)
        if category is not None:
            return _step(stack), category
    leaf = stack[-1].file.rsplit("/", 1)[-1] if stack else "?"
    return _step(stack), f"other ({leaf})"


def fold(
    profile: dict[str, object],
) -> tuple[Counter[str], Counter[str], Counter[tuple[str, str]], Counter[str]]:
    """Sample weights by step, by category, by both, and by leaf function (self time)."""
    shared = profile["shared"]
    assert isinstance(shared, dict)
    frames = [Frame(f.get("name", "?"), f.get("file", "") or "") for f in shared["frames"]]
    steps: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    both: Counter[tuple[str, str]] = Counter()
    leaves: Counter[str] = Counter()
    profiles = profile["profiles"]
    assert isinstance(profiles, list)
    for thread in profiles:
        for sample, weight in zip(thread["samples"], thread["weights"], strict=True):
            stack = [frames[i] for i in sample]
            step, category = classify(stack)
            steps[step] += weight
            categories[category] += weight
            both[(step, category)] += weight
            if stack:
                leaf = stack[-1]
                leaves[f"{leaf.name} ({_short(leaf.file)})"] += weight
    return steps, categories, both, leaves


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1].removeprefix(".11/").removeprefix(".12/")
    return path


def _lines(title: str, counts: Counter[str], total: float, per: float | None) -> list[str]:
    out = [title]
    for name, weight in counts.most_common():
        share = weight / total
        extra = f"  {share * per:8.0f} us/parcel" if per else ""
        out.append(f"  {share:6.1%}{extra}  {name}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the folded profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--cpu-s", type=float, help="the process's CPU seconds")
    parser.add_argument("--items", type=int, help="parcels polled by the process")
    parser.add_argument("--top", type=int, default=25, help="rows of the step x category table")
    args = parser.parse_args(argv)
    steps, categories, both, leaves = fold(json.loads(args.profile.read_text()))
    total = float(sum(steps.values())) or 1.0
    per = args.cpu_s / args.items * 1e6 if args.cpu_s and args.items else None
    lines = [f"{args.profile.name}: {total:.1f} s sampled (on CPU or waiting for it)"]
    lines += _lines("by step:", steps, total, per)
    lines += _lines("by category:", categories, total, per)
    pairs = Counter({f"{s} / {c}": w for (s, c), w in both.items()})
    lines += _lines(
        f"top {args.top} step / category:", Counter(dict(pairs.most_common(args.top))), total, per
    )
    top_leaves = Counter(dict(leaves.most_common(args.top)))
    lines += _lines(f"top {args.top} functions by self time:", top_leaves, total, per)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
