"""site-info.def is read as the bash subset YAIM files use, and nothing in it ever runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gip import siteinfo
from gip.errors import EXIT_CONFIG, ConfigError, ConfigInputError
from gip.siteinfo import (
    DEFAULT_SITE_INFO,
    _parse_site_info_slowly,
    parse_site_info,
    read_site_info,
    site_info_path,
)

DATA = Path(__file__).parent / "data" / "siteinfo"
BASH = shutil.which("bash")


def values_of(text: str) -> Dict[str, str]:
    return parse_site_info(text, "site-info.def").values


def refusal(text: str) -> ConfigInputError:
    with pytest.raises(ConfigInputError) as caught:
        parse_site_info(text, "site-info.def")
    return caught.value


@pytest.mark.parametrize(
    "text, expected",
    [
        # plain assignments, blanks, comments
        ("A=1", {"A": "1"}),
        ("A=1\n", {"A": "1"}),
        ("A=", {"A": ""}),
        ("\n\n   A=1\n\n", {"A": "1"}),
        ("\tA=1", {"A": "1"}),
        ("# a comment\nA=1", {"A": "1"}),
        ("   # indented comment\nA=1", {"A": "1"}),
        ("A=1  # note", {"A": "1"}),
        ("A=1\t# note", {"A": "1"}),
        ("A= # note", {"A": ""}),
        ("A=x#y", {"A": "x#y"}),
        ("A=#y", {"A": "#y"}),
        ('A="x # y"', {"A": "x # y"}),
        ("A='x # y'", {"A": "x # y"}),
        ('A="x"#y', {"A": "x#y"}),
        ("A=1\nA=2", {"A": "2"}),
        ("_a1=x", {"_a1": "x"}),
        ("A=b=c", {"A": "b=c"}),
        ("A=1 B=2", {"A": "1", "B": "2"}),
        ("A=1 B=$A", {"A": "1", "B": "1"}),
        # export
        ("export A=1", {"A": "1"}),
        ("export A", {}),
        ("A=1\nexport A", {"A": "1"}),
        ("export A=1 B C=2", {"A": "1", "C": "2"}),
        ("export=1", {"export": "1"}),
        ("exporter=1", {"exporter": "1"}),
        # single quotes are literal
        ("A='a b'", {"A": "a b"}),
        ("A='$B `x` \\ \"'", {"A": '$B `x` \\ "'}),
        ("A=''", {"A": ""}),
        ("A='line1\nline2'", {"A": "line1\nline2"}),
        # double quotes: escapes and expansion
        ('A="a b"', {"A": "a b"}),
        ('A="\\"\\\\\\$\\`"', {"A": '"\\$`'}),
        ('A="\\x\\n"', {"A": "\\x\\n"}),
        ('A="a\\\nb"', {"A": "ab"}),
        ('A="line1\nline2"', {"A": "line1\nline2"}),
        ('A=1\nB="x$A"', {"A": "1", "B": "x1"}),
        ('A=1\nB="x${A}y"', {"A": "1", "B": "x1y"}),
        ('A="$"', {"A": "$"}),
        ('A="a$ b"', {"A": "a$ b"}),
        ('A="$\'"', {"A": "$'"}),
        ("A=\"'x'\"", {"A": "'x'"}),
        ('A=""', {"A": ""}),
        # unquoted words: escapes, literal characters, concatenation
        ("A=a\\ b", {"A": "a b"}),
        ("A=\\$B", {"A": "$B"}),
        ("A=\\;\\&\\|\\<\\>\\(\\)", {"A": ";&|<>()"}),
        ("A=a\\\nb", {"A": "ab"}),
        ("A=x\\", {"A": "x\\"}),
        ("A=$", {"A": "$"}),
        ("A=a$", {"A": "a$"}),
        ("A=$.x", {"A": "$.x"}),
        ("A=*?[a]{b,c}!", {"A": "*?[a]{b,c}!"}),
        ("A=a~b", {"A": "a~b"}),
        ("A=x=~", {"A": "x=~"}),
        ("A='~'", {"A": "~"}),
        ("A=\\~", {"A": "~"}),
        ("A=1\nB=\"x\"'y'$A\\ z${A}", {"A": "1", "B": "xy1 z1"}),
        ("A=1 \\\n B=2", {"A": "1", "B": "2"}),
        ("\\\nA=1", {"A": "1"}),
        # expansion uses the value at that point of the file
        ("A=1\nB=$A\nA=2", {"A": "2", "B": "1"}),
        ("A=a\nA=$A:b", {"A": "a:b"}),
        ("A=\nB=x${A}y", {"A": "", "B": "xy"}),
        # CRLF line ends and a byte-order mark
        ("A=1\r\nB='x\r\ny'\r\n", {"A": "1", "B": "x\ny"}),
        ("\ufeffA=1", {"A": "1"}),
        # a value that is one YAIM list stays one string
        ('VOS="atlas cms  lhcb"', {"VOS": "atlas cms  lhcb"}),
        # export expands all its words before it assigns; plain assignments go one by one
        ("A=old\nexport A=new B=$A", {"A": "new", "B": "old"}),
        ("A=old\nA=new B=$A", {"A": "new", "B": "new"}),
        # braces: literal in an assignment, quoted in an export
        ("A=a{1,2}", {"A": "a{1,2}"}),
        ("export A='a{1,2}' B=\"{x}\"", {"A": "a{1,2}", "B": "{x}"}),
        ("A=1\nexport B=${A}", {"A": "1", "B": "1"}),
    ],
)
def test_accepted_syntax(text, expected):
    assert values_of(text) == expected


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("A=$(touch x)", 1, "unsupported shell syntax '$('"),
        ('A="$(touch x)"', 1, "unsupported shell syntax '$('"),
        ("A=$((1+1))", 1, "unsupported shell syntax '$(('"),
        ("A=$[1+1]", 1, "unsupported shell syntax '$['"),
        ("A=`id`", 1, "unsupported shell syntax '`'"),
        # bash drops a backslash-newline first: these are $(id), $0 and $AB to it.
        ('A="$\\\n(id)"', 1, "unsupported shell syntax '$\\\\' (a line continuation after '$')"),
        ("A=$\\\n0", 1, "unsupported shell syntax '$\\\\' (a line continuation after '$')"),
        ("B=1\nA=$B\\\nC", 2, "unsupported shell syntax '$B\\\\' (a name continued on the next line)"),
        ('A="`id`"', 1, "unsupported shell syntax '`'"),
        ("A=1\nB=${A:-x}", 2, "unsupported shell syntax '${A:-x}'"),
        ("A=1\nB=${#A}", 2, "unsupported shell syntax '${#A}'"),
        ("A=1\nB=${!A}", 2, "unsupported shell syntax '${!A}'"),
        ("A=1\nB=${A/x/y}", 2, "unsupported shell syntax '${A/x/y}'"),
        ("B=${A", 1, "unsupported shell syntax '${'"),
        ("A=$1", 1, "unsupported shell syntax '$1'"),
        ("A=$@", 1, "unsupported shell syntax '$@'"),
        ("A=$?", 1, "unsupported shell syntax '$?'"),
        ("A=$$", 1, "unsupported shell syntax '$$'"),
        ('A="$#"', 1, "unsupported shell syntax '$#'"),
        ("A=$'x'", 1, "unsupported shell syntax \"$'\""),
        ('A=$"x"', 1, "unsupported shell syntax '$\"'"),
        ("A=~", 1, "unsupported shell syntax '~'"),
        ("A=~/x", 1, "unsupported shell syntax '~'"),
        ("A=x:~/y", 1, "unsupported shell syntax '~'"),
        ("A=1; B=2", 1, "unsupported shell syntax ';'"),
        ("A=1;", 1, "unsupported shell syntax ';'"),
        ("A=1 && B=2", 1, "unsupported shell syntax '&&'"),
        ("A=1 || B=2", 1, "unsupported shell syntax '||'"),
        ("A=1 & B=2", 1, "unsupported shell syntax '&'"),
        ("A=1 | cat", 1, "unsupported shell syntax '|'"),
        ("A=1 > out", 1, "unsupported shell syntax '>'"),
        ("A=1 >> out", 1, "unsupported shell syntax '>>'"),
        ("A=1 < in", 1, "unsupported shell syntax '<'"),
        ("A=(a b)", 1, "unsupported shell syntax '('"),
        ("A=x)", 1, "unsupported shell syntax ')'"),
        ("f() { A=1; }", 1, "unsupported shell syntax 'f()'"),
        ("function f {\nA=1\n}", 1, "unsupported shell syntax 'function'"),
        ("if true; then\nA=1\nfi", 1, "unsupported shell syntax 'if'"),
        ("for x in a b; do A=$x; done", 1, "unsupported shell syntax 'for'"),
        ("while true; do :; done", 1, "unsupported shell syntax 'while'"),
        ("case x in esac", 1, "unsupported shell syntax 'case'"),
        ("{ A=1; }", 1, "unsupported shell syntax '{'"),
        ("source /etc/profile", 1, "unsupported shell syntax 'source'"),
        (". /etc/profile", 1, "unsupported shell syntax '.'"),
        ("echo hello", 1, "unsupported shell syntax 'echo'"),
        ("A=1 echo hello", 1, "unsupported shell syntax 'echo'"),
        ("readonly A=1", 1, "unsupported shell syntax 'readonly'"),
        ("A+=x", 1, "unsupported shell syntax 'A+=x'"),
        ("A[0]=x", 1, "unsupported shell syntax 'A[0]=x'"),
        ("1A=x", 1, "unsupported shell syntax '1A=x'"),
        ('"A"=x', 1, "unsupported shell syntax '\"A\"=x'"),
        ("export", 1, "unsupported shell syntax 'export' without a name"),
        ("export -n A", 1, "unsupported shell syntax '-n'"),
        ("export A-B", 1, "unsupported shell syntax 'A-B'"),
        ("A='abc", 1, "unterminated single quote"),
        ('A="abc', 1, "unterminated double quote"),
        ('A="abc\\"', 1, "unterminated double quote"),
        ("# ok\n\nA=1\nB=x\n\nC=$(id)", 6, "unsupported shell syntax '$('"),
        ("A='one\ntwo'\nB=$(id)", 3, "unsupported shell syntax '$('"),
        ("A=1\nB='one\ntwo\nC=3", 2, "unterminated single quote"),
        ('A=1\nB="one\ntwo $(id)"', 3, "unsupported shell syntax '$('"),
        ("A=a\\\nb\\\nc;", 3, "unsupported shell syntax ';'"),
        ("A=1\r\nB=2\r\nC=`x`\r\n", 3, "unsupported shell syntax '`'"),
        # a key that is not set earlier is an error, never an empty string
        ("A=$B", 1, "$B: B is not set earlier in this file"),
        ("A=1\nB=${C}", 2, "${C}: C is not set earlier in this file"),
        ('A=1\n\nB="x $HOME"', 3, "$HOME: HOME is not set earlier in this file"),
        ("A=1 B=$C C=2", 1, "$C: C is not set earlier in this file"),
        ("B=$A\nA=1", 1, "$A: A is not set earlier in this file"),
        ("A=1\nB=$A_x", 2, "$A_x: A_x is not set earlier in this file"),
        ("export A=new B=$A", 1, "$A: A is not set earlier in this file"),
        # bash brace-expands an export's words: 'export A=a{1,2}' sets a2
        ("export A=a{1,2}", 1, "unsupported shell syntax '{' (a brace in an export's word; quote it: '{')"),
        ("A=1\nexport B=x C=$A{1..3}", 2, "unsupported shell syntax '{'"),
        # '$A\<newline>\<newline>B' is $AB to bash, however many continuations
        ("A=1\nAB=2\nC=$A\\\n\\\nB", 3, "unsupported shell syntax '$A\\\\' (a name continued on the next line)"),
        ('A=1\nC="$A\\\n\\\n\\\nB"', 2, "unsupported shell syntax '$A\\\\'"),
        # bash sets these itself, or refuses them: its value would not be the file's
        ("UID=5\nQ=$UID", 1, "UID is a variable that bash sets itself; name it otherwise"),
        ("A=1\n_=x", 2, "_ is a variable that bash sets itself"),
        ("export RANDOM=4", 1, "RANDOM is a variable that bash sets itself"),
        ("A=1 SECONDS=2", 1, "SECONDS is a variable that bash sets itself"),
        ("A=1\nB=a\x00b", 2, "a NUL byte, which bash would drop"),
        # bash drops backslash-newlines first: the ~ then starts the value, or follows a ':'
        ("VO_SW_DIR=\\\n~/sw", 2, "unsupported shell syntax '~' (tilde expansion; quote it: '~')"),
        ("A=x:\\\n\\\n~", 3, "unsupported shell syntax '~'"),
        ("export A=\\\n~root", 2, "unsupported shell syntax '~'"),
    ],
)
def test_refused_syntax(text, line, message):
    error = refusal(text)
    assert (error.path, error.line) == ("site-info.def", line)
    assert error.message.startswith(message)
    assert str(error).startswith(f"site-info.def:{line}: {message}")
    assert error.exit_code == EXIT_CONFIG


def test_lines_tell_where_each_key_was_last_set():
    text = "# header\nA=1\nB='x\ny'   C=3\n\nexport D=4\nA=5\n"
    info = parse_site_info(text, "s.def")
    assert info.lines == {"A": 7, "B": 3, "C": 4, "D": 6}
    assert info.where("A") == 7
    assert info.where("missing") is None


# Writers of a value in the two quoting styles, as a site admin or a tool would write them.
def single_quoted(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def double_quoted(value: str) -> str:
    escaped = "".join("\\" + c if c in '\\"$`' else c for c in value)
    return '"' + escaped + '"'


def unquoted(value: str) -> str:
    return "".join(c if c.isalnum() else "\\" + c for c in value).replace("\\\n", "'\n'")


printable = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t"),
    max_size=60,
)


@pytest.mark.parametrize("write", [single_quoted, double_quoted, unquoted])
@given(value=printable)
def test_any_printable_value_reads_back(write, value):
    text = f"# comment\nKEY={write(value)}  # note\nNEXT=1\n"
    info = parse_site_info(text, "s.def")
    assert info.values == {"KEY": value, "NEXT": "1"}
    assert info.lines["NEXT"] == 3 + value.count("\n")


@given(value=printable)
def test_expanded_value_is_copied_exactly(value):
    text = f"A={single_quoted(value)}\nB=\"<$A>\"\nC=${{A}}${{A}}\n"
    assert values_of(text) == {"A": value, "B": f"<{value}>", "C": value + value}


@pytest.mark.parametrize(
    "text",
    [
        "A=$(touch {marker})",
        'A="$(touch {marker})"',
        "A=`touch {marker}`",
        "A=1; touch {marker}",
        "A=1 && touch {marker}",
        "A=1 | touch {marker}",
        "touch {marker}",
        "A=1\ntouch {marker}\n",
        "A=1 > {marker}",
        "A=${{B:=$(touch {marker})}}",
        "A=$((1))$(touch {marker})",
        "f() {{ touch {marker}; }}\nf",
    ],
)
def test_nothing_is_ever_executed(tmp_path, text):
    marker = tmp_path / "ran"
    path = tmp_path / "site-info.def"
    path.write_text(text.format(marker=marker))
    with pytest.raises(ConfigInputError) as caught:
        read_site_info(path)
    assert caught.value.line in (1, 2)
    assert "unsupported shell syntax" in caught.value.message
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site-info.def"]


def test_realistic_site_info_def():
    info = read_site_info(DATA / "site-info.def")
    values = info.values
    assert info.path == str(DATA / "site-info.def")
    assert values["SITE_NAME"] == "EXAMPLE-T2"
    assert values["CE_HOST"] == "ce01.example.org"
    assert values["SITE_EMAIL"] == "grid-admin@example.org"
    assert values["BATCH_SERVER"] == "torque.example.org"
    assert values["VOS"] == "atlas cms lhcb dteam ops"
    assert values["QUEUES"] == "long short"
    assert values["LONG_GROUP_ENABLE"] == "atlas /atlas/ROLE=production cms"
    assert values["CE_STATE"] == "PilotSCAS"
    assert values["SHORT_CE_STATE"] == "Closed"
    assert values["CE_CAPABILITY"] == "CPUScalingReferenceSI00=2155 Share=atlas:60 Share=cms:30"
    assert values["CE_OTHERDESCR"] == "Cores=4,Benchmark=8.62-HEP-SPEC06"
    assert values["CE_RUNTIMEENV"].split() == ["LCG-2", "LCG-2_1_0", "GLITE-3_2_0", "R-GMA"]
    assert values["VO_ATLAS_SW_DIR"] == "/opt/exp_soft/atlas"
    assert values["VO_ATLAS_VOMS_SERVERS"] == "vomss://voms.cern.ch:8443/voms/atlas?/atlas/"
    assert values["VO_DTEAM_VOMS_CA_DN"] == "'/DC=ch/DC=cern/CN=CERN Trusted Certification Authority'"
    assert values["X509_VOMS_DIR"] == "/etc/grid-security/vomsdir"
    assert info.lines["CE_RUNTIMEENV"] == 42
    assert info.lines["SHORT_CE_STATE"] == 60
    assert len(values) == 42


def test_missing_file_is_a_config_error(tmp_path):
    path = tmp_path / "nowhere" / "site-info.def"
    with pytest.raises(ConfigError) as caught:
        read_site_info(path)
    assert str(caught.value) == f"{path}: cannot read site-info.def: No such file or directory"
    assert caught.value.exit_code == EXIT_CONFIG


def test_a_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        read_site_info(tmp_path)
    assert str(caught.value) == f"{tmp_path}: cannot read site-info.def: Is a directory"


def test_a_fifo_is_a_config_error_not_a_wait_for_ever(tmp_path):
    fifo = tmp_path / "site-info.def"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as caught:
        read_site_info(fifo)
    assert str(caught.value) == f"{fifo}: cannot read site-info.def: not a regular file (a FIFO, a socket or a device)"


def test_a_file_in_the_path_is_a_config_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot read site-info.def: Not a directory"):
        read_site_info(tmp_path / "file" / "site-info.def")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_config_error(tmp_path):
    path = tmp_path / "site-info.def"
    path.write_text("A=1\n")
    path.chmod(0)
    with pytest.raises(ConfigError, match="Permission denied"):
        read_site_info(path)


@pytest.mark.parametrize(
    "data, line",
    [
        (b"\xff", 1),
        (b"A=1\nB=caf\xe9\n", 2),
        (b"A=1\n# \xc3\n\nB=2\n", 2),
        (b"A='x\ny\nz\xe2\x82'\n", 3),
    ],
)
def test_non_utf8_bytes_name_the_line(tmp_path, data, line):
    path = tmp_path / "site-info.def"
    path.write_bytes(data)
    with pytest.raises(ConfigInputError) as caught:
        read_site_info(path)
    assert (caught.value.path, caught.value.line) == (str(path), line)
    assert caught.value.message == "not UTF-8 text"
    assert caught.value.exit_code == EXIT_CONFIG


def test_utf8_values_are_read(tmp_path):
    path = tmp_path / "site-info.def"
    path.write_bytes("SITE_NAME='Zürich'\n".encode())
    assert read_site_info(path).values == {"SITE_NAME": "Zürich"}


@pytest.mark.parametrize(
    "option, environ, expected",
    [
        ("/x/site.def", {"GIP_SITE_INFO": "/y/site.def"}, "/x/site.def"),
        (None, {"GIP_SITE_INFO": "/y/site.def"}, "/y/site.def"),
        (None, {}, DEFAULT_SITE_INFO),
        (None, {"GIP_SITE_INFO": ""}, DEFAULT_SITE_INFO),
        ("", {"GIP_SITE_INFO": "/y/site.def"}, "/y/site.def"),
        ("relative.def", {}, "relative.def"),
    ],
)
def test_site_info_path(option, environ, expected):
    assert site_info_path(option, environ) == Path(expected)


def test_default_path():
    assert DEFAULT_SITE_INFO == "/etc/gip/site-info.def"


# What bash itself makes of the files gip accepts: the two must agree.


def bash_values(path: Path, keys: List[str]) -> List[str]:
    script = 'set -u; . "$1"; shift; for k; do printf "%s\\0" "${!k}"; done'
    done = subprocess.run(
        [str(BASH), "--norc", "--noprofile", "-c", script, "bash", str(path), *keys],
        cwd=path.parent,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=10,
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    return done.stdout.decode().split("\0")[:-1]


def assert_bash_agrees(path: Path) -> None:
    info = read_site_info(path)
    keys = sorted(info.values)
    assert bash_values(path, keys) == [info.values[k] for k in keys]


needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")


@needs_bash
def test_bash_reads_the_realistic_file_the_same(tmp_path):
    path = tmp_path / "site-info.def"
    shutil.copy(DATA / "site-info.def", path)
    assert_bash_agrees(path)


plain = st.text(st.sampled_from("xyz019._,:/=@%+-*?[]{}!^#"), min_size=1, max_size=6)
quoted_text = st.text(st.sampled_from("ab $#;&|<>()~'\\`\"\n\t{}"), max_size=8)
fragment = st.one_of(
    plain,
    quoted_text.map(single_quoted),
    quoted_text.map(double_quoted),
    st.sampled_from(["${A}", '"$A"', '"${A}x"', "\\ ", "\\;", "\\$A", "\\\n", "$", '"$"', '"a\\b"', "''", '""',
                     "$B", "$A\\\n\\\nB", "a{1,2}", "~", ":", "\\\n~"]),
)


@st.composite
def site_files(draw):
    lines = ["A=" + draw(plain)]
    for key in ("B", "C", "D"):
        value = "".join(draw(st.lists(fragment, max_size=5)))
        prefix = draw(st.sampled_from(["", "export ", "  ", "\t"]))
        suffix = draw(st.sampled_from(["", "  ", " # note ' \"", "\t#"]))
        separator = draw(st.sampled_from(["\n", "\n\n# c\n", " "]))
        lines.append(separator + prefix + f"{key}={value}{suffix}")
    return "".join(lines) + "\n"


@needs_bash
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=site_files())
def test_bash_agrees_on_generated_files(tmp_path, text):
    path = tmp_path / "site-info.def"
    path.write_text(text)
    try:
        read_site_info(path)
    except ConfigInputError:
        return  # a refusal is always safe; agreement matters for what gip accepts
    assert_bash_agrees(path)


# parse_site_info reads the common line shapes with one pattern match each and
# everything else character by character; _parse_site_info_slowly reads all of
# it character by character. The two must never differ: not in a value, not in
# the order keys were first set, not in the line of a key, not in an error.


def reading(parse, text: str):
    try:
        info = parse(text, "s.def")
    except ConfigInputError as error:
        return ("refused", error.path, error.line, error.message)
    return ("read", info.path, list(info.values.items()), list(info.lines.items()))


def assert_fast_reading_is_exact(text: str) -> None:
    # The file as written, and with CRLF line ends and a byte-order mark, as an editor may save it.
    for variant in (text, "\ufeff" + text.replace("\n", "\r\n")):
        assert reading(parse_site_info, variant) == reading(_parse_site_info_slowly, variant)


def mostly(common, rare):
    """``common`` seven times in eight: most generated files should be read, not refused."""
    return st.integers(0, 7).flatmap(lambda n: rare if n == 0 else common)


key_names = st.sampled_from(["A", "B", "_c9", "export", "exporter", "Q_GROUP_ENABLE"])
# Characters that matter to the reading, and a few that do not.
tricky_text = st.text(st.sampled_from("ab=_ \t\n#$`~:;&|<>(){}'\"\\\r\x0bé"), max_size=10)
plain_text = st.text(st.sampled_from("ab19._,:/=@%+-*?[]{}!^#\ré~"), max_size=8)
# Values in the shapes the fast path reads, and accepted values one or two characters
# away from them, which the character-level parser reads.
accepted_values = st.one_of(
    plain_text,
    plain_text.map(lambda v: f'"{v} {v}"'),
    plain_text.map(lambda v: f"'{v}\t{v}'"),
    st.sampled_from(['"a\nb"', "'a\n\nb'", '"\nA=1\n"', "'\nB=$A\n'", '""', "''", "'$A'", "\"'x'\""]),
    st.sampled_from(["$A", "${A}", '"x$A"', "x\\", "x\\\n", "\\\ny", '"a\\"b"', '"a\\\nb"', "a\\ b"]),
    st.sampled_from(['"x"y', "'x'\"y\"", '"x"#y', "x#y", "#", "#y", "a~", "$", '"$"', "a=b", "é"]),
)
# A plain word with one character in it that may end, continue or spoil it.
near_miss_words = st.builds(
    lambda a, c, b: a + c + b, plain_text, st.sampled_from(list(" \t\n|&;<>()'\"\\$`~#=:{}\r")), plain_text
)
near_miss_values = st.one_of(
    near_miss_words, near_miss_words.map(lambda v: f'"{v}"'), near_miss_words.map(lambda v: f"'{v}'")
)
refused_values = st.one_of(
    st.sampled_from(["~", "~/x", "x:~", "#y'", "'a", '"a', "$(id)", "`id`", '"`id`"', "x;", "x)", "(a b)"]),
    st.sampled_from(["x|y", "1 B=2", "1 echo", "$1", "${A:-x}", "$B_", "$Z"]),
    tricky_text,
    tricky_text.map(lambda v: f'"{v}"'),
    tricky_text.map(lambda v: f"'{v}'"),
)
blanks = st.sampled_from(["", " ", "\t", "  \t"])
comments = st.sampled_from(["", "#", "# note", "#x'\"$(id)`", "# a \\"])


@st.composite
def assignment_lines(draw):
    export = draw(st.sampled_from(["", "export ", "export\t", "export  "]))
    comment = draw(comments)
    tail = draw(blanks) + (" " + comment if comment else "")
    value = draw(st.one_of(mostly(accepted_values, refused_values), near_miss_values))
    return draw(blanks) + export + draw(key_names) + "=" + value + tail


accepted_lines = st.one_of(
    blanks,
    st.builds(lambda b, c: b + c, blanks, comments),
    st.sampled_from(["export A", "export A B=1", "export=1", "A=1 B=2", "A=1 \\", "  \\", "\\"]),
)
refused_lines = st.one_of(
    st.sampled_from(["export", "export -n A", "export =1", "A+=1", "echo x", "f() { A=1; }", "A=1;B=2"]),
    tricky_text,
)


@st.composite
def mixed_files(draw):
    lines = draw(st.lists(st.one_of(assignment_lines(), mostly(accepted_lines, refused_lines)), max_size=12))
    # $A expands only where A is set earlier.
    start = draw(st.sampled_from(["", "A=a\n"]))
    end = draw(st.sampled_from(["", "\n", "\n\n", " ", "\\"]))
    return start + "\n".join(lines) + end


@settings(max_examples=1000, deadline=None)
@given(text=mixed_files())
def test_fast_reading_equals_the_character_level_parser(text):
    assert_fast_reading_is_exact(text)


@settings(max_examples=1000, deadline=None)
@given(text=st.text(st.sampled_from("AB=_ex\t\n #$`~:;&|<>(){}'\"\\\r"), max_size=40))
def test_fast_reading_equals_the_character_level_parser_on_any_text(text):
    assert_fast_reading_is_exact(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "A=1",
        "A=#y",
        "A=#y'",
        "A=x#y # c",
        'A="x"#y',
        "A= # note\nB=2",
        "A='one\ntwo'\nB=$(id)",
        'A="one\ntwo"   # c\nB=x\nC=${B}',
        "A=1\nB=$A\nA=2\nC=\"$A\"\nA=3",
        "A=1 \\\n B=2\nC=3",
        "  \\\nA=1\nB=2",
        "export A=1\nexport A\nexport=2\nexport  export=3",
        "A=1\nB='x\nC=3\n",
        "A=x:~\nB=1",
        "A=1\n\n\nB=$C",
        "A=1\r\nB='x\r\ny'\r\nC=`x`\r\n",
    ],
)
def test_fast_reading_equals_the_character_level_parser_on_examples(text):
    assert_fast_reading_is_exact(text)


@pytest.mark.parametrize("char", list(" \t\n|&;<>()'\"\\$`~#=:{}\r\x0b\x00é"))
def test_fast_reading_equals_the_character_level_parser_next_to_any_special_character(char):
    shapes = ["A=a{}b", "A={}", "A=a{}", 'A="a{}b"', "A='a{}b'", "A=a {}b", "export A{}=1", "{}A=1", "A=1{}"]
    shapes += ["A=a#b{}", 'A="a\\{}b"', "A='a\\{}b'", "A=a\\{}b"]
    for shape in shapes:
        assert_fast_reading_is_exact("A=0\n" + shape.format(char) + "\nB=2 # c\n")


def test_common_lines_are_read_without_the_character_level_parser(monkeypatch):
    def fail(self):
        raise AssertionError(f"read character by character at {self.pos}")

    monkeypatch.setattr(siteinfo._Parser, "_statement", fail)
    text = "#!/bin/bash\n\n  # c\nA=1\nexport B='x y'  # c\n\tC=\"a b\"\nD= \nE=x#y\nA=2"
    info = parse_site_info(text, "s.def")
    assert info.values == {"A": "2", "B": "x y", "C": "a b", "D": "", "E": "x#y"}
    assert info.lines == {"A": 9, "B": 5, "C": 6, "D": 7, "E": 8}


def test_fast_reading_of_the_realistic_file():
    assert_fast_reading_is_exact((DATA / "site-info.def").read_text())
