"""Many writers at once on one tag file: the lock serialises them, nothing is lost."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from gip import history
from gip.cli.tags import invoke
from gip.tagfile import read_tag_file

WRITERS = 64


def _write(info: str, argv: List[str], start) -> None:
    start.wait(30)
    outcome = invoke(["--info-dir", info, "--vo", "atlas", "--lock-timeout", "120", *argv],
                     environ={"X509_USER_PROXY": "/nonexistent"})
    os._exit(outcome.exit_code)


def _run_all(info: Path, commands: List[List[str]]) -> List[int]:
    context = multiprocessing.get_context("fork")
    start = context.Event()
    writers = [context.Process(target=_write, args=(str(info), argv, start)) for argv in commands]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(180)
    return [writer.exitcode for writer in writers]


def check_consistent(info: Path) -> List[dict]:
    """The file is canonical and valid, and the history's chain of hashes ends in it."""
    path = info / "atlas" / "atlas.ldif"
    read = read_tag_file(path, "atlas")
    assert read.problems == []
    assert path.read_text() == "".join(f"{t}\n" for t in sorted(read.tags))
    records = history.read_history(info / "atlas" / ".atlas.ldif.history").records
    for before, after in zip(records, records[1:]):
        assert after["previous_sha256"] == before["sha256"]
    assert records[-1]["sha256"] == history.tags_sha256(sorted(read.tags))
    assert not [p for p in (info / "atlas").iterdir() if ".tmp-" in p.name]
    return records


@pytest.fixture
def info(tmp_path) -> Path:
    (tmp_path / "info" / "atlas").mkdir(parents=True)
    return tmp_path / "info"


def test_64_processes_adding_distinct_tags(info):
    tags = [f"VO-atlas-writer-{n:02d}" for n in range(WRITERS)]
    codes = _run_all(info, [["add", tag] for tag in tags])
    assert codes == [0] * WRITERS
    assert read_tag_file(info / "atlas" / "atlas.ldif", "atlas").tags == sorted(tags)
    records = check_consistent(info)
    assert len(records) == WRITERS
    assert sorted(tag for r in records for tag in r["added"]) == sorted(tags)


def test_adders_and_removers_at_once(info):
    kept = [f"VO-atlas-kept-{n:02d}" for n in range(8)]
    doomed = [f"VO-atlas-doomed-{n:02d}" for n in range(WRITERS // 2)]
    invoke(["--info-dir", str(info), "--vo", "atlas", "add", *kept, *doomed], environ={})
    fresh = [f"VO-atlas-fresh-{n:02d}" for n in range(WRITERS // 2)]
    codes = _run_all(info, [["add", t] for t in fresh] + [["remove", t] for t in doomed])
    assert codes == [0] * WRITERS
    assert read_tag_file(info / "atlas" / "atlas.ldif", "atlas").tags == sorted(kept + fresh)
    assert len(check_consistent(info)) == WRITERS + 1


@pytest.mark.skipif(not (Path(sys.executable).parent / "gip-tags").exists(), reason="gip-tags is not installed")
def test_console_scripts_at_once(info):
    script = str(Path(sys.executable).parent / "gip-tags")
    tags = [f"VO-atlas-script-{n:02d}" for n in range(16)]
    processes = [subprocess.Popen([script, "--info-dir", str(info), "--vo", "atlas", "add", tag],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for tag in tags]
    results = [(p.wait(120), p.stderr.read()) for p in processes]
    for process in processes:
        process.stderr.close()
    assert results == [(0, b"")] * len(tags)
    assert read_tag_file(info / "atlas" / "atlas.ldif", "atlas").tags == sorted(tags)
    assert len(check_consistent(info)) == len(tags)
