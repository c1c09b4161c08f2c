"""Writers killed with SIGKILL at random moments: the file is always one state of the sequence.

``GIP_CRASH_ROUNDS`` sets the number of kills (default 300, a few seconds).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import FrozenSet, List, Set

import pytest

from gip import history
from gip.cli.tags import invoke
from gip.tagfile import read_tag_file

ROUNDS = int(os.environ.get("GIP_CRASH_ROUNDS", "300"))
STEPS = 100
START = [f"VO-atlas-base-{n:04d}-x86_64-slc6-gcc" for n in range(2000)]


def step_argv(round_number: int, step: int) -> List[str]:
    """Step j of a round: add a new tag, except every third step removes the one added two steps before.

    No state repeats, so the file's content says how many steps were made.
    """
    if step % 3 == 2:
        return ["remove", f"VO-atlas-r{round_number}-{step - 2}"]
    return ["add", f"VO-atlas-r{round_number}-{step}"]


def states_of_round(start: FrozenSet[str], round_number: int) -> List[FrozenSet[str]]:
    states = [start]
    for step in range(STEPS):
        verb, tag = step_argv(round_number, step)
        states.append(states[-1] | {tag} if verb == "add" else states[-1] - {tag})
    assert len(set(states)) == len(states)
    return states


def churn(info: Path, round_number: int, ready: int) -> None:
    """The child: changes the file step after step until it is killed."""
    os.write(ready, b"!")
    for step in range(STEPS):
        outcome = invoke(["--info-dir", str(info), "--vo", "atlas", *step_argv(round_number, step)],
                         environ={"X509_USER_PROXY": "/nonexistent"})
        if outcome.exit_code != 0:
            os._exit(3)
    os._exit(0)


def kill_one_writer(info: Path, round_number: int, rng: random.Random, window: float) -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            os.close(read_end)
            churn(info, round_number, write_end)
        finally:
            os._exit(4)
    os.close(write_end)
    os.read(read_end, 1)
    os.close(read_end)
    time.sleep(rng.uniform(0, window))
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0, f"writer failed: status {status}"


def file_state(info: Path) -> FrozenSet[str]:
    read = read_tag_file(info / "atlas" / "atlas.ldif", "atlas")
    assert read.problems == []
    return frozenset(read.tags)


def check_history(info: Path, seen: int, reached: Set[str]) -> int:
    """Readable, its chain of hashes unbroken, and every record a state the file really had.

    A writer killed between its rename and its record leaves the last record a
    state behind the file; the next writer records the difference.
    """
    read = history.read_history(info / "atlas" / ".atlas.ldif.history")
    assert read.problems == []
    records = read.records
    start = max(seen, 1)
    for before, after in zip(records[start - 1:], records[start:]):
        assert after["previous_sha256"] == before["sha256"]
    for record in records[seen:]:
        assert record["sha256"] in reached, "the history names a state the file never had"
    return len(records)


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_broken_file(tmp_path):
    info = tmp_path / "info"
    (info / "atlas").mkdir(parents=True)
    assert invoke(["--info-dir", str(info), "--vo", "atlas", "add", *START], environ={}).exit_code == 0
    rng = random.Random(20240501)
    # How long after its start a writer may be killed: wider while the writers make fewer changes
    # than the test needs, back to 40 ms when they make enough. A change waits for fsync, which a
    # busy disk makes ten times slower: a fixed window would then kill most writers before they
    # change anything.
    window = 0.04
    state = file_state(info)
    reached = {history.tags_sha256(sorted(state))}
    seen = check_history(info, 0, reached)
    changes = 0
    for round_number in range(ROUNDS):
        states = states_of_round(state, round_number)
        kill_one_writer(info, round_number, rng, window)
        now = file_state(info)
        assert now in states, f"round {round_number}: the file is no state of the sequence"
        position = states.index(now)
        reached.update(history.tags_sha256(sorted(s)) for s in states[1:position + 1])
        seen = check_history(info, seen, reached)
        changes += position
        lagging = changes < 0.75 * (round_number + 1)
        window = min(window * 1.25, 0.3) if lagging else max(window / 1.25, 0.04)
        state = now
    assert changes > ROUNDS // 2, "the writers were killed before they changed anything: the test proves little"
    # One more writer after all that: it records what a killed writer left unrecorded and cleans its temporaries.
    assert invoke(["--info-dir", str(info), "--vo", "atlas", "add", "VO-atlas-final"], environ={}).exit_code == 0
    assert not [p.name for p in (info / "atlas").iterdir() if ".tmp-" in p.name]
    records = history.read_history(info / "atlas" / ".atlas.ldif.history").records
    assert records[-1]["sha256"] == history.tags_sha256(sorted(file_state(info)))
    restored = invoke(["--info-dir", str(info), "--vo", "atlas", "restore", "--steps", "1"], environ={})
    assert restored.exit_code == 0 and frozenset(restored.document["tags"]) == state
