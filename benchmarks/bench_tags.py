"""Start-up benchmark of gip-tags: list, add and remove on a VO file of 20,000 tags.

Run: ``python benchmarks/bench_tags.py [--runs N]``. It writes a tag file of
20,000 tags of about 40 characters in a temporary folder, then runs the
installed ``gip-tags`` console script (from the bin folder of the Python
running this script, e.g. the venv's) with ``list`` (stdout to /dev/null),
``add`` and ``remove`` of one tag, next to ``python -c pass`` run by the
same interpreter, interleaved so a busy machine slows them all alike. It
prints the median wall time of each and its ratio to ``python -c pass``;
targets: list within 3x, add and remove within 4x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

TAGS = 20_000
TARGETS = {"list": 3.0, "add": 4.0, "remove": 4.0}


def make_tree(root: Path) -> Path:
    folder = root / "info" / "atlas"
    folder.mkdir(parents=True)
    # VO-atlas-production-00001-x86_64-slc6-gcc: 42 characters, the shape of real ones.
    tags = sorted(f"VO-atlas-production-{n:05d}-x86_64-slc6-gcc" for n in range(TAGS))
    (folder / "atlas.ldif").write_text("".join(t + "\n" for t in tags), encoding="ascii")
    return root / "info"


def timed(argv: Sequence[str], environ: Dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, env=environ, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}")
    return elapsed


def measure(info_dir: Path, runs: int) -> Dict[str, List[float]]:
    program = str(Path(sys.executable).parent / "gip-tags")
    if not os.access(program, os.X_OK):
        raise SystemExit(f"{program} is not installed: pip install -e . in this Python's environment first")
    environ = dict(os.environ, X509_USER_PROXY=str(info_dir / "no-proxy"))
    # An installed gip has its bytecode compiled: let the warm-up runs write it, as they would.
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    base = [program, "--info-dir", str(info_dir), "--vo", "atlas"]
    for warm_up in (["list"], ["add", "VO-atlas-warm-up"], ["remove", "VO-atlas-warm-up"]):
        timed(base + warm_up, environ)
    times: Dict[str, List[float]] = {"python -c pass": [], "list": [], "add": [], "remove": []}
    for run in range(runs):
        tag = f"VO-atlas-bench-{run}"
        times["python -c pass"].append(timed([sys.executable, "-c", "pass"], environ))
        times["list"].append(timed(base + ["list"], environ))
        times["add"].append(timed(base + ["add", tag], environ))
        times["remove"].append(timed(base + ["remove", tag], environ))
    return times


def report(times: Dict[str, List[float]]) -> bool:
    """Medians and their ratios (the targets); fastest runs too, as a busy machine slows the medians."""
    floor = statistics.median(times["python -c pass"])
    fastest_floor = min(times["python -c pass"])
    print(f"{'command':16} {'median ms':>10} {'ratio':>7} {'target':>10} {'fastest ms':>11} {'ratio':>7}")
    ok = True
    for name, values in times.items():
        median = statistics.median(values)
        ratio = median / floor
        target = TARGETS.get(name)
        mark = "" if target is None else f"{target:.1f}x" + (" ok" if ratio <= target else " MISSED")
        ok = ok and (target is None or ratio <= target)
        fastest = min(values)
        print(f"{name:16} {median * 1000:10.1f} {ratio:6.2f}x {mark:>10} {fastest * 1000:11.1f} "
              f"{fastest / fastest_floor:6.2f}x")
    return ok


def compile_package() -> None:
    """Byte-compiles gip as an install does: with PYTHONDONTWRITEBYTECODE set, every run would compile it again."""
    import compileall

    import gip

    compileall.compile_dir(str(Path(gip.__file__).parent), quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="repetitions of each command (default 40)")
    args = parser.parse_args()
    compile_package()
    with tempfile.TemporaryDirectory(prefix="gip-bench-tags-") as root:
        info_dir = make_tree(Path(root))
        print(f"{TAGS} tags of ~42 characters, {args.runs} runs each, interpreter {sys.executable}")
        ok = report(measure(info_dir, args.runs))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
