from __future__ import annotations

from gip.report import Problem, summarize


def test_problem_text_is_located_and_escaped():
    assert str(Problem("f", 3, "not ASCII", "caf\u00e9\n")) == "f:3: not ASCII: 'caf\\xe9\\n'"
    assert str(Problem("f", None, "cannot read")) == "f: cannot read"
    long = str(Problem("f", 1, "r", "x" * 500))
    assert len(long) < 100 and long.endswith("...'")


def test_a_path_with_a_line_break_stays_on_one_line_of_the_log():
    assert str(Problem("info/sc\nx/atlas/atlas.ldif", 2, "bad", "t")) == "info/sc\\nx/atlas/atlas.ldif:2: bad: 't'"
    assert str(Problem("info/caf\u00e9/x", None, "r")) == "info/caf\u00e9/x: r"  # printable: as it is


def test_summary_is_bounded_per_file_and_reason_unless_every_case():
    problems = [Problem("a", n, "bad", f"t{n}") for n in range(1, 1001)]
    problems += [Problem("a", 5, "other", "u"), Problem("b", 1, "bad", "v")]
    assert summarize(problems) == [
        "a:1: bad: 't1' (and 999 more like it in this file; -v lists them)",
        "a:5: other: 'u'",
        "b:1: bad: 'v'",
    ]
    assert len(summarize(problems, every_case=True)) == 1002
