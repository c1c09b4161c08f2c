"""lcg-ManageVOTag and lcg-tags: the historical syntax, its output, confirmation, and real edits.

The first half runs the commands against a stand-in CE that records the
gip-tags arguments it is given and answers a chosen document; the second
half edits real tag folders in tmp_path through gip-tags, in-process and as
the installed console scripts.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from gip.cli import legacy
from gip.cli.program import run
from gip.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from gip.remote import Reply
from gip.tagfile import read_tag_file

DN = "/DC=org/DC=example/CN=Jane Doe"
BIN = Path(sys.executable).parent


class FakeCE:
    """Stands in for gip-tags wherever it runs: records what it is asked, answers a document."""

    def __init__(self, exit_code: int = 0, **document: Any) -> None:
        self.exit_code = exit_code
        self.document: Dict[str, Any] = {
            "ok": exit_code == 0, "exit_code": exit_code, "error": None, "changed": True,
            "tags": ["VO-atlas-a", "VO-atlas-b"], "added": [], "removed": [],
            "account": "atlassgm", "identity": DN, "file": "/opt/edg/var/info/atlas/atlas.ldif",
        }
        self.document.update(document)
        self.hosts: List[Optional[str]] = []
        self.calls: List[List[str]] = []

    def choose(self, host, environ, site_info):
        self.hosts.append(host)
        return self.run

    def run(self, argv):
        self.calls.append(list(argv))
        return Reply(self.exit_code, dict(self.document))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def manage(argv, ce: FakeCE, stdin: str = "", terminal: bool = False):
    """lcg-ManageVOTag against ``ce``: (exit code, stdout, prompt)."""
    out, prompt = io.StringIO(), io.StringIO()
    answers = Terminal(stdin) if terminal else io.StringIO(stdin)

    def body() -> int:
        args = legacy.manage_vo_tag_parser().parse_args(argv)
        return legacy.manage_vo_tag(args, {}, answers, out, prompt, ce.choose)

    return run(legacy.MANAGE_VO_TAG, body), out.getvalue(), prompt.getvalue()


def tags_cmd(argv, ce: FakeCE):
    """lcg-tags against ``ce``: (exit code, stdout)."""
    out = io.StringIO()

    def body() -> int:
        return legacy.lcg_tags(legacy.lcg_tags_parser().parse_args(argv), {}, out, ce.choose)

    return run(legacy.LCG_TAGS, body), out.getvalue()


def spellings(*words: str) -> List[List[str]]:
    """The words with every option spelled with one dash, then with two."""
    one = list(words)
    two = [f"-{w}" if w.startswith("-") and not w.startswith("--") else w for w in words]
    return [one, two]


HOST = ["-host", "ce.example.org", "-vo", "atlas"]


# lcg-ManageVOTag: what is asked of gip-tags


@pytest.mark.parametrize(
    "words, stdin, expected",
    [
        (["-list"], "", ["--json", "--vo", "atlas", "list"]),
        (["-add", "-tag", "VO-atlas-a"], "", ["--json", "--vo", "atlas", "add", "VO-atlas-a"]),
        (["-add", "-tag", "VO-atlas-a", "VO-atlas-b"], "", ["--json", "--vo", "atlas", "add", "VO-atlas-a", "VO-atlas-b"]),
        (["-add", "-tag", "VO-atlas-a", "-tag", "VO-atlas-b"], "", ["--json", "--vo", "atlas", "add", "VO-atlas-a", "VO-atlas-b"]),
        (["-remove", "-tag", "VO-atlas-a"], "yes\n", ["--json", "--vo", "atlas", "remove", "VO-atlas-a"]),
        (["-remove", "-tag", "vo-ATLAS-a"], "y\n", ["--json", "--vo", "atlas", "remove", "vo-ATLAS-a"]),
        (["-replace", "-tag", "VO-atlas-a", "VO-atlas-c"], "", ["--json", "--vo", "atlas", "replace", "VO-atlas-a", "VO-atlas-c"]),
        (["-list", "-info-dir", "/srv/info"], "", ["--json", "--vo", "atlas", "--info-dir", "/srv/info", "list"]),
    ],
)
def test_manage_vo_tag_asks_gip_tags_for_the_same_work_in_both_spellings(words, stdin, expected):
    for argv in spellings(*HOST, *words):
        ce = FakeCE()
        code, _, _ = manage(argv, ce, stdin)
        assert code == EXIT_OK
        assert ce.calls == [expected]
        assert ce.hosts == ["ce.example.org"]


def test_scripts_in_the_wild_mix_one_and_two_dashes():
    ce = FakeCE()
    code, _, _ = manage(["-host", "ce", "--vo", "atlas", "--add", "-tag", "VO-atlas-a", "VO-atlas-b"], ce)
    assert code == EXIT_OK
    assert ce.calls == [["--json", "--vo", "atlas", "add", "VO-atlas-a", "VO-atlas-b"]]


def test_file_tags_are_read_here_and_sent_as_arguments(tmp_path):
    tags = tmp_path / "tags.txt"
    tags.write_bytes(b"\xef\xbb\xbf# made by the install job\r\nVO-atlas-a, VO-atlas-b\r\n"
                     b"GlueHostApplicationSoftwareRunTimeEnvironment: VO-atlas-c\r\n\r\nVO-atlas-a\r\n")
    for argv in spellings(*HOST, "-add", "-file", str(tags)):
        ce = FakeCE()
        assert manage(argv, ce)[0] == EXIT_OK
        assert ce.calls == [["--json", "--vo", "atlas", "add", "VO-atlas-a", "VO-atlas-b", "VO-atlas-c"]]
    ce = FakeCE()
    assert manage([*HOST, "-remove", "-file", str(tags)], ce, "yes\n")[0] == EXIT_OK
    assert ce.calls == [["--json", "--vo", "atlas", "remove", "VO-atlas-a", "VO-atlas-b", "VO-atlas-c"]]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"VO-atlas-a\nVO-cms-b\n", "tags.txt:2: names VO 'cms', not 'atlas': 'VO-cms-b'; nothing changed"),
        (b"VO-atlas-a\n$(touch x)\n;touch\n", "tags.txt:2: does not start with 'VO-atlas-': '$(touch' (and 2 more; -v lists them)"),
        (b"VO-atlas-\xc3\xa9\n", "tags.txt:1: not ASCII"),
        (b"# nothing yet\n\n", "tags.txt: holds no tags; nothing changed"),
    ],
)
def test_a_file_with_anything_but_valid_tags_refuses_the_whole_command(tmp_path, capsys, content, message):
    tags = tmp_path / "tags.txt"
    tags.write_bytes(content)
    ce = FakeCE()
    code, out, _ = manage([*HOST, "-add", "-file", str(tags)], ce)
    assert (code, out, ce.calls) == (EXIT_FAILED, "", [])
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_a_missing_file_is_named(tmp_path, capsys):
    ce = FakeCE()
    code, _, _ = manage([*HOST, "-add", "-file", str(tmp_path / "nope")], ce)
    assert (code, ce.calls) == (EXIT_FAILED, [])
    assert f"{tmp_path / 'nope'}: cannot read: No such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-vo", "atlas", "-list"], "required: -host"),
        (["-host", "ce", "-list"], "required: -vo"),
        (["-host", "ce", "-vo", "atlas"], "one of the arguments"),
        (["-host", "ce", "-vo", "atlas", "-list", "-add"], "not allowed with argument"),
        (["-host", "ce", "-vo", "atlas", "-list", "-tag", "VO-atlas-a"], "-list takes no -tag or -file"),
        (["-host", "ce", "-vo", "atlas", "-add"], "-add needs -tag TAG... or -file F"),
        (["-host", "ce", "-vo", "atlas", "-remove"], "-remove needs -tag TAG... or -file F"),
        (["-host", "ce", "-vo", "atlas", "-replace", "-tag", "VO-atlas-a"], "-replace takes -tag OLD NEW"),
        (["-host", "ce", "-vo", "atlas", "-replace", "-tag", "VO-atlas-a", "VO-atlas-b", "VO-atlas-c"], "-replace takes -tag OLD NEW"),
        (["-host", "ce", "-vo", "atlas", "-add", "-tag", "VO-atlas-a", "-file", "f"], "not allowed with argument"),
        (["-host", "ce", "-vo", "atlas", "-ho", "x", "-list"], "-ho"),
        (["-host", "-oProxyCommand=touch x", "-vo", "atlas", "-list"], "cannot begin with '-'"),
        (["-host", "-oProxyCommand=x", "-vo", "atlas", "-list"], "expected one argument"),
        (["-host=-oProxyCommand=touch x", "-vo", "atlas", "-list"], "cannot begin with '-'"),
        (["-host", "ce;touch x", "-vo", "atlas", "-list"], "invalid host"),
        (["-host", "ce", "-vo", "../etc", "-list"], "invalid VO name '../etc'"),
        (["-host", "ce", "-vo", "", "-list"], "a VO name is empty"),
        (["-host", "ce", "-vo", "a/b", "-add", "-tag", "VO-a/b-x"], "invalid VO name 'a/b'"),
        (["-host", "ce", "-vo", "../etc", "-add", "-file", "/etc/passwd"], "invalid VO name '../etc'"),
    ],
)
def test_usage_errors_exit_2_and_nothing_runs(capsys, argv, message):
    ce = FakeCE()
    code, out, _ = manage(argv, ce)
    assert (code, out, ce.calls) == (EXIT_USAGE, "", [])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "words, reason",
    [
        (["-add", "-tag", "$(touch /tmp/x)"], "does not start with 'VO-atlas-'"),
        (["-add", "-tag", ";touch x"], "does not start with 'VO-atlas-'"),
        (["-add", "-tag", "VO-atlas-$(touch x)"], "'VO-atlas-' must be followed by a letter or digit"),
        (["-add", "-tag", "VO-atlas-a;touch x"], "holds ';'"),
        (["-add", "-tag", "VO-atlas-a`touch x`"], "holds '`'"),
        (["-add", "-tag", "VO-atlas-a\ndn: o=grid"], "holds '\\n'"),
        (["-add", "-tag", "VO-tagname-!!"], "names VO 'tagname', not 'atlas'"),
        (["-add", "-tag", "VO-atlas-!!"], "'VO-atlas-' must be followed by a letter or digit"),
        (["-add", "-tag", "VO-cms-CMSSW_3_8_4"], "names VO 'cms', not 'atlas'"),
        (["-add", "-tag", "vo-atlas-lower"], "starts with 'vo-atlas-', not 'VO-atlas-': the case differs"),
        (["-add", "-tag", "VO-atlas-" + "x" * 247], "longer than 255"),
        (["-remove", "-tag", "VO-atlas-a b"], "holds ' '"),
        (["-replace", "-tag", "VO-atlas-a", "VO-atlas-$(id)"], "must be followed by a letter or digit"),
    ],
)
def test_tags_the_provider_would_refuse_exit_1_before_anything_runs(capsys, words, reason):
    ce = FakeCE()
    code, out, prompt = manage([*HOST, *words], ce, "yes\n")
    assert (code, out, prompt, ce.calls, ce.hosts) == (EXIT_FAILED, "", "", [], [])
    err = capsys.readouterr().err
    assert reason in err and "nothing changed" in err


# lcg-ManageVOTag: what it prints


def test_an_answer_cannot_add_lines_to_what_is_printed(capsys):
    ce = FakeCE(removed=["VO-atlas-a", "EVIL\nLINE", {"a": 1}], identity="me\nFAKE: line \ud800")
    code, out, _ = manage([*HOST, "-remove", "-tag", "VO-atlas-a"], ce, stdin="yes\n")
    assert code == 0
    assert out == ("lcg-ManageVOTag: [VO-atlas-a] removed by me\\nFAKE: line \\ud800 from "
                   "GlueHostApplicationSoftwareRunTimeEnvironment\n")


@pytest.mark.parametrize("remote_code, expected", [(1, 1), (2, 2), (3, 3), (200, 1), (255, 1)])
def test_a_failure_exit_code_is_one_gip_tags_documents(remote_code, expected):
    ce = FakeCE(remote_code, error="refused\nsecond line")
    code, out, _ = manage([*HOST, "-list"], ce)
    assert (code, out) == (expected, "")


def test_listed_values_that_are_no_tags_are_left_out(capsys):
    from gip.remote import Reply

    reply = Reply(0, {"tags": ["VO-atlas-a", "VO-atlas-b\nVO-atlas-c", "x,y", 5, "VO-atlas-d"]}, [])
    assert legacy.listed_tags(reply) == ["VO-atlas-a", "VO-atlas-d"]
    assert "the answer lists 3 values that are not tags; left out" in capsys.readouterr().err


def test_list_prints_the_tags_comma_separated_on_one_line():
    code, out, _ = manage([*HOST, "-list"], FakeCE(tags=["VO-atlas-a", "VO-atlas-b", "VO-atlas-c"]))
    assert (code, out) == (EXIT_OK, "VO-atlas-a, VO-atlas-b, VO-atlas-c\n")
    assert manage([*HOST, "-list"], FakeCE(tags=[]))[1] == "\n"


def test_add_names_the_submitted_tags_and_the_grid_identity():
    code, out, _ = manage([*HOST, "-add", "-tag", "VO-atlas-a", "VO-atlas-b"], FakeCE(added=["VO-atlas-b"]))
    assert code == EXIT_OK
    assert out == (f"lcg-ManageVOTag: [VO-atlas-a, VO-atlas-b] submitted for addition by {DN} "
                   "to GlueHostApplicationSoftwareRunTimeEnvironment\n")


def test_without_a_grid_identity_the_account_is_named():
    _, out, _ = manage([*HOST, "-add", "-tag", "VO-atlas-a"], FakeCE(identity=None))
    assert out == ("lcg-ManageVOTag: [VO-atlas-a] submitted for addition by atlassgm "
                   "to GlueHostApplicationSoftwareRunTimeEnvironment\n")


def test_remove_names_the_spellings_removed():
    _, out, _ = manage([*HOST, "-remove", "-tag", "vo-atlas-a"], FakeCE(removed=["VO-atlas-a"]), "yes\n")
    assert out == f"lcg-ManageVOTag: [VO-atlas-a] removed by {DN} from GlueHostApplicationSoftwareRunTimeEnvironment\n"


def test_replace_names_both_tags():
    _, out, _ = manage([*HOST, "-replace", "-tag", "VO-atlas-a", "VO-atlas-c"], FakeCE())
    assert out == (f"lcg-ManageVOTag: [VO-atlas-a] replaced with [VO-atlas-c] by {DN} "
                   "in GlueHostApplicationSoftwareRunTimeEnvironment\n")


@pytest.mark.parametrize("exit_code", [EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG])
def test_a_refusal_is_one_line_on_stderr_with_gip_tags_exit_code(capsys, exit_code):
    ce = FakeCE(exit_code, error="tag 'VO-atlas-A' differs only in case from 'VO-atlas-a', which is there")
    code, out, _ = manage([*HOST, "-add", "-tag", "VO-atlas-A"], ce)
    assert (code, out) == (exit_code, "")
    assert capsys.readouterr().err == (
        "lcg-ManageVOTag: ERROR: tag 'VO-atlas-A' differs only in case from 'VO-atlas-a', which is there\n"
    )


# lcg-ManageVOTag: confirmation


@pytest.mark.parametrize("answer", ["yes\n", "y\n", "Y\n", "YES\n", " yes \n", "y\ny\ny\n", "yes"])
def test_remove_goes_ahead_on_yes(answer):
    ce = FakeCE(removed=["VO-atlas-a"])
    code, out, prompt = manage([*HOST, "-remove", "-tag", "VO-atlas-a"], ce, answer)
    assert code == EXIT_OK
    assert ce.calls == [["--json", "--vo", "atlas", "remove", "VO-atlas-a"]]
    assert prompt == ""
    assert "removed by" in out


def test_a_person_at_a_terminal_is_asked():
    ce = FakeCE(removed=["VO-atlas-a"])
    code, _, prompt = manage([*HOST, "-remove", "-tag", "VO-atlas-a"], ce, "y\n", terminal=True)
    assert code == EXIT_OK
    assert prompt == "Remove [VO-atlas-a] of VO atlas from ce.example.org? [y/N] "


@pytest.mark.parametrize("answer", ["", "n\n", "no\n", "yess\n", "\n", "oui\n", "nyes\n"])
def test_remove_changes_nothing_on_any_other_answer(capsys, answer):
    ce = FakeCE()
    code, out, _ = manage([*HOST, "-remove", "-tag", "VO-atlas-a"], ce, answer)
    assert (code, out, ce.calls) == (EXIT_FAILED, "", [])
    assert "nothing removed" in capsys.readouterr().err


def test_remove_asks_before_even_choosing_where_to_run():
    ce = FakeCE()
    code, _, prompt = manage(["-host", "127.0.0.1", "-vo", "atlas", "-remove", "-tag", "VO-atlas-a"], ce, "n\n", terminal=True)
    assert (code, ce.hosts, ce.calls) == (EXIT_FAILED, [], [])
    assert prompt == "Remove [VO-atlas-a] of VO atlas from 127.0.0.1? [y/N] "


@pytest.mark.parametrize("words", [["-list"], ["-add", "-tag", "VO-atlas-a"], ["-replace", "-tag", "VO-atlas-a", "VO-atlas-b"]])
def test_only_remove_asks(words):
    ce = FakeCE()
    code, _, prompt = manage([*HOST, *words], ce, "")
    assert (code, prompt) == (EXIT_OK, "")


# lcg-tags


@pytest.mark.parametrize(
    "argv, host, expected",
    [
        (["--ce", "ce", "--vo", "cms", "--list"], "ce", ["--json", "--vo", "cms", "list"]),
        (["--sc", "sc1", "--vo", "cms", "--list"], None, ["--json", "--vo", "cms", "--sc", "sc1", "list"]),
        (["--ce", "ce", "--sc", "sc1", "--vo", "cms", "--list"], "ce", ["--json", "--vo", "cms", "--sc", "sc1", "list"]),
        (["--ce", "ce", "--vo", "cms", "--add", "--tags", "VO-cms-a,VO-cms-b"], "ce", ["--json", "--vo", "cms", "add", "VO-cms-a", "VO-cms-b"]),
        (["--ce", "ce", "--vo", "cms", "--add", "--tags", "VO-cms-a, VO-cms-b,", "--tags", "VO-cms-c"], "ce",
         ["--json", "--vo", "cms", "add", "VO-cms-a", "VO-cms-b", "VO-cms-c"]),
        (["--ce", "ce", "--vo", "cms", "--remove", "--tags", "VO-cms-a"], "ce", ["--json", "--vo", "cms", "remove", "VO-cms-a"]),
        (["--sc", "sc1", "--vo", "cms", "--clean"], None, ["--json", "--vo", "cms", "--sc", "sc1", "clean", "--yes"]),
        (["--ce", "ce", "--vo", "cms", "--list", "--info-dir", "/srv/info"], "ce", ["--json", "--vo", "cms", "--info-dir", "/srv/info", "list"]),
    ],
)
def test_lcg_tags_asks_gip_tags_for_the_same_work(argv, host, expected):
    ce = FakeCE(tags=[])
    code, _ = tags_cmd(argv, ce)
    assert code == EXIT_OK
    assert (ce.hosts, ce.calls) == ([host], [expected])


def test_lcg_tags_reads_a_tag_file_here(tmp_path):
    tags = tmp_path / "tags"
    tags.write_text("VO-cms-a VO-cms-b\nVO-cms-c\n")
    ce = FakeCE()
    assert tags_cmd(["--ce", "ce", "--vo", "cms", "--remove", "--tagfile", str(tags)], ce)[0] == EXIT_OK
    assert ce.calls == [["--json", "--vo", "cms", "remove", "VO-cms-a", "VO-cms-b", "VO-cms-c"]]


def test_lcg_tags_lists_one_tag_per_line_and_is_silent_on_change():
    assert tags_cmd(["--ce", "ce", "--vo", "atlas", "--list"], FakeCE()) == (EXIT_OK, "VO-atlas-a\nVO-atlas-b\n")
    assert tags_cmd(["--ce", "ce", "--vo", "atlas", "--list"], FakeCE(tags=[])) == (EXIT_OK, "")
    assert tags_cmd(["--ce", "ce", "--vo", "atlas", "--add", "--tags", "VO-atlas-a"], FakeCE()) == (EXIT_OK, "")


def test_lcg_tags_verbose_says_what_changed_on_stderr(capsys):
    ce = FakeCE(added=["VO-atlas-c"])
    assert legacy.lcg_tags_main.__name__  # the console script's entry point exists
    out = io.StringIO()

    def body() -> int:
        args = legacy.lcg_tags_parser().parse_args(["--ce", "ce", "--vo", "atlas", "--add", "--tags", "VO-atlas-c", "--verbose"])
        legacy.configure_logging(legacy.LCG_TAGS, legacy.verbosity(args))
        return legacy.lcg_tags(args, {}, out, ce.choose)

    assert run(legacy.LCG_TAGS, body) == EXIT_OK
    err = capsys.readouterr().err
    assert "lcg-tags: INFO: added: VO-atlas-c" in err
    assert f"add of VO atlas in /opt/edg/var/info/atlas/atlas.ldif, by {DN}" in err
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["--vo", "cms", "--list"], EXIT_USAGE, "one of --ce CE or --sc SUBCLUSTER is required"),
        (["--ce", "ce", "--list"], EXIT_USAGE, "required: --vo"),
        (["--ce", "ce", "--vo", "cms"], EXIT_USAGE, "one of the arguments"),
        (["--ce", "ce", "--vo", "cms", "--add"], EXIT_USAGE, "--add needs --tags a,b,c or --tagfile F"),
        (["--ce", "ce", "--vo", "cms", "--add", "--tags", ","], EXIT_USAGE, "--add needs --tags"),
        (["--ce", "ce", "--vo", "cms", "--list", "--tags", "VO-cms-a"], EXIT_USAGE, "--list takes no --tags"),
        (["--ce", "ce", "--vo", "cms", "--clean", "--tags", "VO-cms-a"], EXIT_USAGE, "--clean takes no --tags"),
        (["--ce", "-oProxyCommand=x", "--vo", "cms", "--list"], EXIT_USAGE, "expected one argument"),
        (["--ce=-oProxyCommand=x", "--vo", "cms", "--list"], EXIT_USAGE, "cannot begin with '-'"),
        (["--ce", "ce", "--sc", "../x", "--vo", "cms", "--list"], EXIT_USAGE, "invalid SubCluster ID '../x'"),
        (["--ce", "ce", "--vo", "CMS", "--list"], EXIT_USAGE, "invalid VO name 'CMS'"),
        (["--sc", "a/b", "--vo", "cms", "--add", "--tagfile", "/etc/passwd"], EXIT_USAGE, "invalid SubCluster ID 'a/b'"),
        (["--ce", "ce", "--vo", "cms", "--add", "--tags", "VO-cms-a,$(touch x)"], EXIT_FAILED, "tag '$(touch' refused"),
        (["--ce", "ce", "--vo", "cms", "--add", "--tags", "VO-cms-a;touch"], EXIT_FAILED, "holds ';'"),
    ],
)
def test_lcg_tags_refusals(capsys, argv, code, message):
    ce = FakeCE()

    def body() -> int:
        return legacy.lcg_tags(legacy.lcg_tags_parser().parse_args(argv), {}, io.StringIO(), ce.choose)

    assert run(legacy.LCG_TAGS, body) == code
    assert ce.calls == []
    assert message in capsys.readouterr().err


def test_lcg_tags_reports_a_remote_refusal_with_its_exit_code(capsys):
    ce = FakeCE(EXIT_FAILED, error="tag 'VO-cms-x' is not there; nothing changed")
    assert tags_cmd(["--ce", "ce", "--vo", "cms", "--remove", "--tags", "VO-cms-x"], ce) == (EXIT_FAILED, "")
    assert capsys.readouterr().err == "lcg-tags: ERROR: tag 'VO-cms-x' is not there; nothing changed\n"


@pytest.mark.parametrize("tags, expected", [
    (["a,b,c"], ("a", "b", "c")),
    (["a, b", "c"], ("a", "b", "c")),
    ([",a,,b,"], ("a", "b")),
    (["a\tb\nc"], ("a", "b", "c")),
    ([""], ()),
])
def test_split_tags(tags, expected):
    assert legacy.split_tags(tags) == expected


# Real edits through gip-tags on this machine


@pytest.fixture
def info(tmp_path, monkeypatch):
    """This machine's tag tree in tmp_path (EDG_LOCATION_VAR), with atlas and sc1/atlas folders."""
    info = tmp_path / "var" / "info"
    (info / "atlas").mkdir(parents=True)
    (info / "sc1" / "atlas").mkdir(parents=True)
    monkeypatch.setenv("EDG_LOCATION_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "no-proxy"))
    monkeypatch.setenv("GIP_SITE_INFO", str(tmp_path / "no-site-info.def"))
    # Were anything sent over ssh, it would fail loudly.
    monkeypatch.setenv("GIP_SSH", str(tmp_path / "no-ssh"))
    return info


def tags_of(path: Path, vo: str = "atlas") -> List[str]:
    return read_tag_file(path, vo).tags if path.exists() else []


def manage_main(argv, monkeypatch, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return legacy.manage_vo_tag_main(argv)


USER = legacy.identity({"account": __import__("getpass").getuser()})


@pytest.mark.parametrize("dash", ["-", "--"])
def test_manage_vo_tag_every_operation_on_this_machine(info, monkeypatch, capsys, tmp_path, dash):
    def o(name: str) -> str:
        return dash + name

    base = [o("host"), "localhost", o("vo"), "atlas"]
    tag_file = info / "atlas" / "atlas.ldif"
    assert manage_main([*base, o("add"), o("tag"), "VO-atlas-a", "VO-atlas-b"], monkeypatch) == EXIT_OK
    assert tags_of(tag_file) == ["VO-atlas-a", "VO-atlas-b"]
    more = tmp_path / "more.txt"
    more.write_text("VO-atlas-c,VO-atlas-d\n")
    assert manage_main([*base, o("add"), o("file"), str(more)], monkeypatch) == EXIT_OK
    assert manage_main([*base, o("replace"), o("tag"), "VO-atlas-a", "VO-atlas-e"], monkeypatch) == EXIT_OK
    assert manage_main([*base, o("remove"), o("tag"), "vo-atlas-B"], monkeypatch, "yes\n") == EXIT_OK
    assert manage_main([*base, o("remove"), o("file"), str(more)], monkeypatch, "y\n") == EXIT_OK
    assert capsys.readouterr().out == "".join(f"lcg-ManageVOTag: {line} GlueHostApplicationSoftwareRunTimeEnvironment\n" for line in [
        f"[VO-atlas-a, VO-atlas-b] submitted for addition by {USER} to",
        f"[VO-atlas-c, VO-atlas-d] submitted for addition by {USER} to",
        f"[VO-atlas-a] replaced with [VO-atlas-e] by {USER} in",
        f"[VO-atlas-b] removed by {USER} from",
        f"[VO-atlas-c, VO-atlas-d] removed by {USER} from",
    ])
    assert manage_main([*base, o("list")], monkeypatch) == EXIT_OK
    assert capsys.readouterr().out == "VO-atlas-e\n"
    assert tags_of(tag_file) == ["VO-atlas-e"]


def test_manage_vo_tag_passes_the_info_dir_through(tmp_path, info, monkeypatch, capsys):
    other = tmp_path / "other"
    (other / "atlas").mkdir(parents=True)
    argv = ["-host", "localhost", "-vo", "atlas", "-add", "-tag", "VO-atlas-x", "-info-dir", str(other)]
    assert manage_main(argv, monkeypatch) == EXIT_OK
    assert tags_of(other / "atlas" / "atlas.ldif") == ["VO-atlas-x"]
    assert not (info / "atlas" / "atlas.ldif").exists()


def test_ce_host_of_site_info_is_this_machine(tmp_path, info, monkeypatch):
    site = tmp_path / "site-info.def"
    site.write_text("SITE_NAME=Test\nCE_HOST=ce01.example.org\n")
    argv = ["-host", "CE01.example.org", "-vo", "atlas", "-add", "-tag", "VO-atlas-x", "-site-info", str(site)]
    assert manage_main(argv, monkeypatch) == EXIT_OK
    assert tags_of(info / "atlas" / "atlas.ldif") == ["VO-atlas-x"]


def test_another_host_is_not_this_machine(info, monkeypatch, capsys, tmp_path):
    assert manage_main(["-host", "ce01.example.org", "-vo", "atlas", "-list"], monkeypatch) == EXIT_CONFIG
    assert f"cannot run '{tmp_path / 'no-ssh'}'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "setup, argv, stdin, message",
    [
        ("VO-atlas-a\n", ["-add", "-tag", "VO-atlas-A"], "", "differs only in case"),
        ("VO-atlas-a\n", ["-remove", "-tag", "VO-atlas-b"], "yes\n", "VO-atlas-b"),
        ("VO-atlas-a\n", ["-replace", "-tag", "VO-atlas-b", "VO-atlas-c"], "", "VO-atlas-b"),
        ("VO-atlas-a\n", ["-remove", "-tag", "VO-atlas-a"], "no\n", "nothing removed"),
        ("VO-atlas-a\n", ["-remove", "-tag", "VO-atlas-a"], "", "nothing removed"),
    ],
)
def test_manage_vo_tag_refusals_change_nothing(info, monkeypatch, capsys, setup, argv, stdin, message):
    tag_file = info / "atlas" / "atlas.ldif"
    tag_file.write_text(setup)
    assert manage_main(["-host", "localhost", "-vo", "atlas", *argv], monkeypatch, stdin) == EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("lcg-ManageVOTag: ERROR: ") and message in captured.err
    assert captured.err.count("\n") == 1
    assert tag_file.read_text() == setup


def test_a_vo_folder_the_site_never_made_is_refused_with_a_pointer_to_init(info, monkeypatch, capsys):
    assert manage_main(["-host", "localhost", "-vo", "cms", "-add", "-tag", "VO-cms-a"], monkeypatch) == EXIT_FAILED
    assert "init" in capsys.readouterr().err
    assert not (info / "cms").exists()


def test_lcg_tags_every_operation_on_this_machine(info, capsys, tmp_path):
    global_file, sc_file = info / "atlas" / "atlas.ldif", info / "sc1" / "atlas" / "atlas.ldif"
    tagfile = tmp_path / "tags"
    tagfile.write_text("VO-atlas-x VO-atlas-y\n")
    assert legacy.lcg_tags_main(["--ce", "localhost", "--vo", "atlas", "--add", "--tags", "VO-atlas-a,VO-atlas-b"]) == EXIT_OK
    assert legacy.lcg_tags_main(["--sc", "sc1", "--vo", "atlas", "--add", "--tagfile", str(tagfile)]) == EXIT_OK
    assert legacy.lcg_tags_main(["--ce", "localhost", "--sc", "sc1", "--vo", "atlas", "--add", "--tags", "VO-atlas-z"]) == EXIT_OK
    assert capsys.readouterr().out == ""
    assert tags_of(global_file) == ["VO-atlas-a", "VO-atlas-b"]
    assert tags_of(sc_file) == ["VO-atlas-x", "VO-atlas-y", "VO-atlas-z"]
    assert legacy.lcg_tags_main(["--sc", "sc1", "--vo", "atlas", "--remove", "--tags", "VO-atlas-y"]) == EXIT_OK
    assert legacy.lcg_tags_main(["--ce", "localhost", "--vo", "atlas", "--remove", "--tagfile", str(tagfile)]) == EXIT_FAILED
    assert legacy.lcg_tags_main(["--ce", "localhost", "--vo", "atlas", "--clean"]) == EXIT_OK
    capsys.readouterr()
    assert legacy.lcg_tags_main(["--sc", "sc1", "--vo", "atlas", "--list"]) == EXIT_OK
    assert legacy.lcg_tags_main(["--ce", "localhost", "--vo", "atlas", "--list"]) == EXIT_OK
    assert capsys.readouterr().out == "VO-atlas-x\nVO-atlas-z\n"
    assert global_file.exists() and global_file.read_bytes() == b""


def test_lcg_tags_passes_the_info_dir_through(tmp_path, info):
    other = tmp_path / "other"
    (other / "s2" / "atlas").mkdir(parents=True)
    argv = ["--sc", "s2", "--vo", "atlas", "--add", "--tags", "VO-atlas-q", "--info-dir", str(other)]
    assert legacy.lcg_tags_main(argv) == EXIT_OK
    assert tags_of(other / "s2" / "atlas" / "atlas.ldif") == ["VO-atlas-q"]


# The installed console scripts


def script(name: str, argv: List[str], env: Dict[str, str], stdin=subprocess.DEVNULL, timeout: float = 30):
    return subprocess.run([str(BIN / name), *argv], stdin=stdin, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def script_env(info, tmp_path):
    return {"PATH": f"{BIN}:/usr/bin:/bin", "EDG_LOCATION_VAR": str(tmp_path / "var"), "LANG": "C.UTF-8",
            "X509_USER_PROXY": str(tmp_path / "no-proxy"), "GIP_SITE_INFO": str(tmp_path / "no-site-info.def"),
            "GIP_SSH": str(tmp_path / "no-ssh")}


def test_installed_manage_vo_tag_in_both_spellings(info, script_env):
    tag_file = info / "atlas" / "atlas.ldif"
    added = script("lcg-ManageVOTag", ["-host", "localhost", "-vo", "atlas", "-add", "-tag", "VO-atlas-a", "VO-atlas-b"], script_env)
    assert (added.returncode, added.stderr) == (EXIT_OK, "")
    assert added.stdout.startswith("lcg-ManageVOTag: [VO-atlas-a, VO-atlas-b] submitted for addition by ")
    replaced = script("lcg-ManageVOTag", ["--host", "localhost", "--vo", "atlas", "--replace", "--tag", "VO-atlas-b", "VO-atlas-c"], script_env)
    assert replaced.returncode == EXIT_OK
    listed = script("lcg-ManageVOTag", ["--host", "localhost", "--vo", "atlas", "--list"], script_env)
    assert (listed.returncode, listed.stdout) == (EXIT_OK, "VO-atlas-a, VO-atlas-c\n")
    assert tags_of(tag_file) == ["VO-atlas-a", "VO-atlas-c"]


def piped_yes(argv: List[str], env: Dict[str, str]):
    """The script with the `yes` program writing y forever on its stdin."""
    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        return script("lcg-ManageVOTag", argv, env, stdin=yes.stdout)
    finally:
        yes.stdout.close()
        yes.kill()
        yes.wait()


@pytest.mark.parametrize("answer, code, left", [
    ("yes", EXIT_OK, ["VO-atlas-b"]),
    ("y-program", EXIT_OK, ["VO-atlas-b"]),
    ("n", EXIT_FAILED, ["VO-atlas-a", "VO-atlas-b"]),
    ("eof", EXIT_FAILED, ["VO-atlas-a", "VO-atlas-b"]),
])
def test_installed_manage_vo_tag_remove_confirmation(info, script_env, answer, code, left):
    tag_file = info / "atlas" / "atlas.ldif"
    tag_file.write_text("VO-atlas-a\nVO-atlas-b\n")
    argv = ["-host", "localhost", "-vo", "atlas", "-remove", "-tag", "VO-atlas-a"]
    if answer == "y-program":
        done = piped_yes(argv, script_env)
    elif answer == "eof":
        done = script("lcg-ManageVOTag", argv, script_env)
    else:
        done = subprocess.run([str(BIN / "lcg-ManageVOTag"), *argv], input=answer + "\n", capture_output=True,
                              text=True, env=script_env, timeout=30)
    assert done.returncode == code, done.stderr
    assert tags_of(tag_file) == left
    if code == EXIT_OK:
        assert done.stdout.startswith("lcg-ManageVOTag: [VO-atlas-a] removed by ")
    else:
        assert done.stdout == ""
        assert "nothing removed" in done.stderr


def test_installed_lcg_tags(info, script_env):
    added = script("lcg-tags", ["--sc", "sc1", "--vo", "atlas", "--add", "--tags", "VO-atlas-a,VO-atlas-b", "--verbose"], script_env)
    assert (added.returncode, added.stdout) == (EXIT_OK, "")
    assert "lcg-tags: INFO: added: VO-atlas-a, VO-atlas-b" in added.stderr
    listed = script("lcg-tags", ["--ce", "localhost", "--sc", "sc1", "--vo", "atlas", "--list"], script_env)
    assert (listed.returncode, listed.stdout, listed.stderr) == (EXIT_OK, "VO-atlas-a\nVO-atlas-b\n", "")
    refused = script("lcg-tags", ["--sc", "sc1", "--vo", "atlas", "--add", "--tags", "VO-atlas-A"], script_env)
    assert (refused.returncode, refused.stdout) == (EXIT_FAILED, "")
    assert refused.stderr.startswith("lcg-tags: ERROR: ") and refused.stderr.count("\n") == 1
    usage = script("lcg-tags", ["--vo", "atlas", "--list"], script_env)
    assert usage.returncode == EXIT_USAGE


def test_the_legacy_commands_import_nothing_heavy(script_env):
    """Start-up time is benchmarked: templates, LDAP and X.509 code are for other commands."""
    code = ("import sys, gip.cli.legacy, gip.remote; "
            "print(sorted(m for m in ('jinja2', 'ldap', 'cryptography', 'subprocess', 'socket', 'gip.cli.tags') "
            "if m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=script_env)
    assert imported.stdout.strip() == "[]"
