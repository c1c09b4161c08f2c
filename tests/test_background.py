"""Work in a forked child (gip.background), and the static LDIF parsed there (staticldif).

The child's result must be read_static_ldif()'s, entry for entry, whatever
the files hold and whether or not the child does its part.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from hypothesis import given, settings

from gip import background, staticldif
from gip.rendercache import RenderCache
from gip.staticldif import read_static_ldif, start_reading_static_ldif
from tests.test_staticldif import entries_of, plain_files

ETC = Path(__file__).resolve().parent.parent / "etc"
# "objectClass" twice, and classes after it: each answer must be found where it is.
QUESTIONS = (("GlueCE", ("GlueCEUniqueID", "GlueCEName", "GlueCEStateStatus")), ("GlueSubCluster", ("objectClass",)),
             ("gluece", ("gluecename", "objectClass", "absent")), ("GlueCETop", ()), ("GlueKey", ("GlueCEName",)))
CLASSES = [name for name, _ in QUESTIONS]
ATTRIBUTES = [attribute for _, attributes in QUESTIONS for attribute in attributes] + ["GlueCEImplementationName"]

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")


# -- gip.background ----------------------------------------------------------------


def answers_of(work) -> List[object]:  # type: ignore[no-untyped-def]
    """Every answer the child of ``work`` sends, then None (it sent no more)."""
    child = background.in_background(work)
    assert child is not None
    try:
        answers: List[object] = []
        while not answers or answers[-1] is not None:
            answers.append(child.answer())
        return answers
    finally:
        child.close()


@needs_fork
def test_the_child_s_answers_come_back_whole_and_in_order():
    big = bytes(range(256)) * 8192  # 2 MiB: many times a pipe's buffer

    def work(send):  # type: ignore[no-untyped-def]
        send(big)
        send(b"")
        send(b"last")

    assert answers_of(work) == [big, b"", b"last", None]


@needs_fork
def test_a_child_that_fails_sends_what_it_had_sent_and_the_parent_goes_on():
    def work(send):  # type: ignore[no-untyped-def]
        send(b"first")
        raise RuntimeError("broken")

    assert answers_of(work) == [b"first", None]
    assert answers_of(lambda send: send(b"after")) == [b"after", None]


@needs_fork
def test_an_answer_cut_short_is_no_answer():
    # As a child killed while writing leaves it: a header promising ten bytes, and three.
    read_end, write_end = os.pipe()
    os.write(write_end, (10).to_bytes(8, "little") + b"abc")
    os.close(write_end)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    child = background.Child(pid, read_end)
    assert child.answer() is None
    child.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped


@needs_fork
def test_the_child_prints_nothing_of_the_parent_s_and_runs_no_exit_handler(tmp_path: Path):
    # Output buffered in the parent when it forks, and an exit handler: each must happen once.
    marker = tmp_path / "exits"
    script = (
        "import atexit, sys\n"
        "from gip import background\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'a').write('exit\\n'))\n"
        "sys.stdout.write('before ')\n"
        "child = background.in_background(lambda send: send(b'child'))\n"
        "sys.stdout.write(child.answer().decode() + ' after')\n"
        "child.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.stdout == "before child after"
    assert marker.read_text() == "exit\n"


@needs_fork
def test_answers_still_come_where_children_are_reaped_unseen():
    import signal

    saved = signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # as a parent program may hand it down
    try:
        assert answers_of(lambda send: send(b"answer")) == [b"answer", None]
    finally:
        signal.signal(signal.SIGCHLD, saved)


def test_without_fork_or_a_second_cpu_nothing_runs_in_the_background(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert background.available() is False
    monkeypatch.delattr(os, "fork", raising=False)
    assert background.available() is False


# -- the static LDIF parsed in a child ---------------------------------------------


def static_files(tmp_path: Path) -> List[str]:
    """Every way a file can be read: plain, by the parser, record by record (UTF-8), not at all."""
    made = {
        "crlf.ldif": b"dn: o=crlf\r\nobjectClass: GlueCE\r\nGlueCEName: q\r\n",
        "base64.ldif": b"dn: o=b64\nobjectClass: GlueCE\nGlueCEName:: cQ==\n",
        "utf8.ldif": "dn: o=utf8\nobjectClass: GlueCE\nGlueCEName: caf\u00e9\n".encode("utf-8"),
        "inner-dn.ldif": b"dn: o=a\nx: 1\ndn: o=b\nGlueCEName: q dn: x\n",
        "unterminated.ldif": b"dn: o=end\nobjectClass: GlueSubCluster\nGlueCEName: q",
        "folded.ldif": b"dn: o=fold\nGlueCEName: a\n b\n",
        "dn-no-blank.ldif": b"dn:o=tight\nobjectClass: GlueCE\n",
        "empty.ldif": b"",
    }
    for name, data in made.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(ETC / "static" / "static-file-CE.ldif"), str(ETC / "static" / "static-file-Cluster.ldif")]
    return paths + [str(tmp_path / name) for name in made] + [str(tmp_path / "missing.ldif")]


def described(result: staticldif.StaticLdif):
    """entries_of(), and what the entries say of themselves and of their file."""
    flags = [
        (entry.ends_file_unterminated, entry.dn_line_plain, entry.inner_dn_line(), entry.prints_as_written(),
         [entry.has_class(name) for name in CLASSES], [entry.first(name) for name in ATTRIBUTES])
        for entry in result.entries
    ]
    return entries_of(result), flags


@pytest.fixture
def in_a_child(monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """Every size of file goes to a child; the list counts the children started."""
    if not background.available():
        pytest.skip("no fork, or one CPU: the static LDIF is parsed in-process here")
    started: List[int] = []
    real = background.in_background

    def counted(work):  # type: ignore[no-untyped-def]
        started.append(1)
        return real(work)

    monkeypatch.setattr(staticldif, "BACKGROUND_BYTES", 0)
    monkeypatch.setattr(background, "in_background", counted)
    return started


@pytest.mark.parametrize("printing", [False, True], ids=["plugin", "merged"])
def test_the_child_s_entries_are_the_parser_s(tmp_path: Path, in_a_child: List[int], printing: bool):
    paths = static_files(tmp_path)
    expected = read_static_ldif(paths)
    result = start_reading_static_ldif(paths, printing, QUESTIONS)()
    assert in_a_child == [1]
    assert described(result) == described(expected)
    assert [str(problem) for problem in result.problems][-1].startswith(f"{tmp_path}/missing.ldif: cannot read")
    # The child answered for the plain ASCII files' entries: the example CE file's, among others.
    answered = [entry for entry in result.entries if entry._known is not None]
    assert {entry.path for entry in answered} >= {str(ETC / "static" / "static-file-CE.ldif")}
    assert all(entry.prints_as_written() for entry in answered if entry.path.endswith("static-file-CE.ldif"))


def test_a_child_that_fails_costs_time_only(tmp_path: Path, in_a_child: List[int], monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]):
    def broken(*args: object) -> None:
        raise MemoryError

    monkeypatch.setattr(staticldif, "_plain_index", broken)  # the child has this module as it is now
    paths = static_files(tmp_path)
    result = start_reading_static_ldif(paths, False, QUESTIONS)()
    assert in_a_child == [1]
    assert described(result) == described(read_static_ldif(paths))
    warning = "gip: WARNING: the child process parsing the static LDIF failed; parsed here instead\n"
    assert capsys.readouterr().err == warning


@pytest.mark.parametrize("where", [0.25, 0.75], ids=["first-half", "second-half"])
@pytest.mark.parametrize("sent", ["all", "index-only"])
def test_each_half_of_a_file_counts_for_what_prints_as_written(tmp_path: Path, in_a_child: List[int],
                                                                monkeypatch: pytest.MonkeyPatch, where: float, sent: str):
    # index-only: the second half of each file, which the child looks at, is never sent; the parent does it.
    def index_only(files, printing, questions, send):  # type: ignore[no-untyped-def]
        parsed = [staticldif._plain_parse(read) for read in files]
        send(marshal.dumps([staticldif._plain_index(p, questions) if p is not None else None for p in parsed]))

    if sent == "index-only":
        monkeypatch.setattr(staticldif, "_in_child", index_only)
    paths = static_files(tmp_path)
    # A line in one half of the example's CE file that does not print as written.
    ce = tmp_path / "ce.ldif"
    text = (ETC / "static" / "static-file-CE.ldif").read_text()
    at = int(len(text) * where)
    ce.write_text(text[:at] + text[at:].replace("\nGlueCEName: ", "\nGlueCEName:  ", 1))
    paths.insert(0, str(ce))
    result = start_reading_static_ldif(paths, True, QUESTIONS)()
    assert in_a_child == [1]
    assert described(result) == described(read_static_ldif(paths))
    assert [entry.prints_as_written() for entry in result.entries if entry.path == str(ce)].count(False) == 1
    # The example's own CE file, whole, is looked at once: it prints as written, both halves said so.
    example = [entry for entry in result.entries if entry.path == str(ETC / "static" / "static-file-CE.ldif")]
    assert example and example[0]._text is not None and example[0]._text._prints_as_written is True


def test_an_index_not_of_the_child_s_making_is_not_used(tmp_path: Path, in_a_child: List[int],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]):
    def garbled(files, printing, questions, send):  # type: ignore[no-untyped-def]
        send(marshal.dumps([(True, 1, [("o=x", 1)], [])] * len(files)))  # entries of the wrong shape

    monkeypatch.setattr(staticldif, "_in_child", garbled)
    paths = static_files(tmp_path)
    result = start_reading_static_ldif(paths, False, QUESTIONS)()
    assert described(result) == described(read_static_ldif(paths))
    assert "child process parsing the static LDIF failed" in capsys.readouterr().err


@pytest.mark.parametrize("glue", ["1", "2", "both"])
def test_the_model_s_questions_are_answered_as_the_entries_answer_them(tmp_path: Path, in_a_child: List[int],
                                                                      glue: str):
    from gip.model import static_questions

    paths = [str(path) for path in sorted((ETC / "static").glob("*.ldif"))]
    questions = static_questions(glue)
    classes = [name for name, _ in questions] + ["GLUE2ComputingShare", "GlueCE"]
    attributes = [attribute for _, names in questions for attribute in names]
    attributes += ["GLUE2ShareID", "GLUE2ComputingShareMappingQueue", "GLUE2ComputingShareServingState"]
    result = start_reading_static_ldif(paths, False, questions)()
    expected = read_static_ldif(paths)
    assert in_a_child == [1]
    assert [(e.dn, [e.has_class(c) for c in classes], [e.first(a) for a in attributes]) for e in result.entries] == [
        (e.dn, [e.has_class(c) for c in classes], [e.first(a) for a in attributes]) for e in expected.entries]
    shares = [e for e in result.entries if e.has_class("GLUE2ComputingShare")]
    assert shares and all(e._known is not None for e in shares)


def test_a_file_for_the_parser_is_parsed_once_by_the_parent(tmp_path: Path, in_a_child: List[int],
                                                            monkeypatch: pytest.MonkeyPatch):
    calls = tmp_path / "calls"
    real = staticldif.parse_with_python_ldap

    def recorded(data: bytes, path: str) -> staticldif.StaticLdif:
        with open(calls, "a") as stream:
            stream.write(f"{os.getpid()}\n")
        return real(data, path)

    monkeypatch.setattr(staticldif, "parse_with_python_ldap", recorded)
    paths = static_files(tmp_path)
    result = start_reading_static_ldif(paths, True, QUESTIONS)()
    assert described(result) == described(read_static_ldif(paths))
    # base64.ldif and folded.ldif need the parser: the parent runs it, for each once, and the child never.
    parent = [line for line in calls.read_text().split() if line == str(os.getpid())]
    assert len(calls.read_text().split()) == len(parent) == 2 * 2  # this run, and read_static_ldif's


@pytest.mark.parametrize("why", ["small files", "one CPU"])
def test_small_files_or_one_cpu_are_parsed_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, why: str):
    def refused(work: object) -> None:
        raise AssertionError(f"no child for {why}")

    monkeypatch.setattr(background, "in_background", refused)
    if why == "one CPU":  # large enough, but nothing would run beside the parent
        monkeypatch.setattr(staticldif, "BACKGROUND_BYTES", 0)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    paths = static_files(tmp_path)
    assert described(start_reading_static_ldif(paths)()) == described(read_static_ldif(paths))


@settings(max_examples=60, deadline=None)
@given(plain_files())
def test_any_plain_file_reads_alike_in_a_child(data: bytes):
    if not background.available():
        pytest.skip("no fork, or one CPU")
    import tempfile

    saved = staticldif.BACKGROUND_BYTES
    staticldif.BACKGROUND_BYTES = 0
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "f.ldif")
            with open(path, "wb") as stream:
                stream.write(data)
            result = start_reading_static_ldif([path], True, QUESTIONS)()
            assert described(result) == described(read_static_ldif([path]))
    finally:
        staticldif.BACKGROUND_BYTES = saved


# -- the child's index kept between runs (gip.rendercache) --------------------------------------------


def never_parse(read: object) -> None:
    raise AssertionError("parsed, where the kept index was to be used")


@pytest.mark.parametrize("printing", [False, True], ids=["plugin", "merged"])
def test_a_kept_index_reads_the_same_files_without_parsing_them(tmp_path: Path, in_a_child: List[int],
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str], printing: bool):
    cache = RenderCache(tmp_path / "cache")
    paths = static_files(tmp_path)
    first = start_reading_static_ldif(paths, printing, QUESTIONS, cache)()
    records = list((tmp_path / "cache").iterdir())
    assert len(records) == 1
    # The child that reads the record has this module as it is now: a parse would fail it.
    monkeypatch.setattr(staticldif, "_plain_parse", never_parse)
    monkeypatch.setattr(staticldif, "_half_prints", never_parse)
    kept = start_reading_static_ldif(paths, printing, QUESTIONS, cache)()
    ce = [entry for entry in kept.entries if entry.path.endswith("static-file-CE.ldif")]
    # Answered by the record, before anything is asked of the entries.
    assert ce[0]._known is not None
    assert ce[0]._text is not None and ce[0]._text._prints_as_written is (True if printing else None)
    assert in_a_child == [1, 1]
    assert capsys.readouterr().err == ""  # -v -v says the record was used: see the BDII test
    assert described(kept) == described(first) == described(read_static_ldif(paths))
    assert list((tmp_path / "cache").iterdir()) == records and records[0].stat().st_mtime_ns == os.stat(
        records[0]).st_mtime_ns


def test_a_kept_index_says_which_files_do_not_print_as_written(tmp_path: Path, in_a_child: List[int],
                                                               monkeypatch: pytest.MonkeyPatch):
    cache = RenderCache(tmp_path / "cache")
    ce = tmp_path / "ce.ldif"
    ce.write_text((ETC / "static" / "static-file-CE.ldif").read_text().replace("\nGlueCEName: ", "\nGlueCEName:  ", 1))
    paths = [str(ce), str(ETC / "static" / "static-file-Cluster.ldif")]
    start_reading_static_ldif(paths, True, QUESTIONS, cache)()
    monkeypatch.setattr(staticldif, "_half_prints", never_parse)
    kept = start_reading_static_ldif(paths, True, QUESTIONS, cache)()
    assert kept.entries[0]._text is not None and kept.entries[0]._text._prints_as_written is False
    assert described(kept) == described(read_static_ldif(paths))
    assert [entry.prints_as_written() for entry in kept.entries if entry.path == str(ce)].count(False) == 1


@pytest.mark.parametrize("change", ["a byte", "a file more", "printing", "questions", "gip's code"])
def test_an_index_is_kept_for_the_very_files_and_reading_it_was_made_for(tmp_path: Path, in_a_child: List[int],
                                                                         monkeypatch: pytest.MonkeyPatch, change: str):
    from gip import rendercache

    cache = RenderCache(tmp_path / "cache")
    ce = tmp_path / "ce.ldif"
    ce.write_bytes((ETC / "static" / "static-file-CE.ldif").read_bytes())
    paths = [str(ce), str(ETC / "static" / "static-file-Cluster.ldif")]
    printing, questions = False, QUESTIONS
    start_reading_static_ldif(paths, printing, questions, cache)()
    if change == "a byte":
        ce.write_bytes(ce.read_bytes().replace(b"GlueCEName: long", b"GlueCEName: lonG", 1))
    elif change == "a file more":
        (tmp_path / "more.ldif").write_bytes(b"dn: o=more\nobjectClass: GlueCE\nGlueCEName: more\n")
        paths.append(str(tmp_path / "more.ldif"))
    elif change == "printing":
        printing = True
    elif change == "questions":
        questions = QUESTIONS[:1]
    else:
        monkeypatch.setattr(rendercache, "_CODE_IDENTITY", ("another gip",))
    parsed = tmp_path / "parsed"
    real = staticldif._plain_parse

    def counted(read):  # type: ignore[no-untyped-def]
        with open(parsed, "a") as stream:  # in the child: told through a file
            stream.write(f"{read[0]}\n")
        return real(read)

    monkeypatch.setattr(staticldif, "_plain_parse", counted)
    result = start_reading_static_ldif(paths, printing, questions, cache)()
    assert in_a_child == [1, 1]
    assert parsed.read_text().split() == paths  # each file parsed afresh, in the child
    assert described(result) == described(read_static_ldif(paths))
    names = {entry.first("GlueCEName") for entry in result.entries}
    assert ("lonG" in names) == (change == "a byte")


@pytest.mark.parametrize("value", [None, ("index", [None, None]), (b"\x00garbage", [True, True]),
                                   (marshal.dumps([None, None]), [True]), [b"", [None, None]]],
                         ids=["none", "index-not-bytes", "index-garbage", "prints-short", "a-list"])
def test_a_record_of_the_wrong_shape_costs_time_only(tmp_path: Path, in_a_child: List[int],
                                                     capsys: pytest.CaptureFixture[str], value: object):
    cache = RenderCache(tmp_path / "cache")
    paths = [str(ETC / "static" / "static-file-CE.ldif"), str(ETC / "static" / "static-file-Cluster.ldif")]
    files = staticldif._read_files(paths)
    record = staticldif._StaticRecord(cache, files, True, QUESTIONS)
    cache.put(record._slot, record._key(), value)
    result = start_reading_static_ldif(paths, True, QUESTIONS, cache)()
    assert described(result) == described(read_static_ldif(paths))
    err = capsys.readouterr().err
    assert err == ("gip: WARNING: the child process parsing the static LDIF failed; parsed here instead\n"
                   if value is not None and isinstance(value, tuple) and value[0] == b"\x00garbage" else "")
