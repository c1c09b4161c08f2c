"""Problems found in the input, and the bounded report of them.

The provider's stderr is the BDII's log, written every cycle: a file full of
bad tags must not flood it. The report therefore says one line per file and
reason (with a count and the first case) unless every case is asked for.
"""

from __future__ import annotations

from gip.errors import located

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple
else:
    from gip._records import NamedTuple

_SHOWN_TOKEN = 60


class Problem(NamedTuple):
    """One thing skipped or wrong: where, why, and what (a token, a value).

    A NamedTuple rather than a dataclass: importing dataclasses costs the
    start of gip-tags a tenth of its time budget.
    """

    path: str
    line: Optional[int]
    reason: str
    subject: str = ""

    def __str__(self) -> str:
        if not self.subject:
            return located(self.path, self.line, self.reason)
        return located(self.path, self.line, f"{self.reason}: {shown(self.subject)}")


def shown(text: str) -> str:
    """A token made safe and short for a log line: escapes control and non-ASCII characters."""
    if len(text) > _SHOWN_TOKEN:
        text = text[:_SHOWN_TOKEN] + "..."
    return ascii(text)


def printable(text: str) -> str:
    """``text`` as it is where every character prints, else escaped: text from another machine
    (a remote answer, its stderr) must not add lines to ours, move the cursor, or hold what no
    terminal can show."""
    return text if text.isprintable() else ascii(text)[1:-1]


def summarize(problems: Iterable[Problem], every_case: bool = False) -> List[str]:
    """Report lines: every problem, or one per (file, reason) with a count."""
    problems = list(problems)
    if every_case:
        return [str(p) for p in problems]
    groups: Dict[Tuple[str, str], List[Problem]] = {}
    for problem in problems:
        groups.setdefault((problem.path, problem.reason), []).append(problem)
    lines = []
    for same in groups.values():
        first = same[0]
        if len(same) == 1:
            lines.append(str(first))
        else:
            more = len(same) - 1
            lines.append(f"{first} (and {more} more like it in this file; -v lists them)")
    return lines
