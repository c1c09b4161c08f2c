"""gip.remote: which hosts are this machine, and how the ssh command is built and read.

These tests need no sshd: a stand-in ssh program runs the remote line through
a real POSIX shell, as sshd hands it to the login shell. tests/test_remote_sshd.py
does the same through a real sshd.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gip import log, remote
from gip.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_USAGE, ConfigError, GipError, UsageError

HOSTILE_WORDS = [
    "$(touch {marker})",
    "`touch {marker}`",
    ";touch {marker}",
    "; touch {marker}",
    "&& touch {marker}",
    "| touch {marker}",
    "\ntouch {marker}",
    "'; touch {marker}; '",
    '"; touch {marker}; "',
    "$(touch {marker})'\"\\",
    "> {marker}",
    "*",
    "~",
    "$HOME",
    "",
    "-n",
    "--",
    "\\",
    "a b\tc",
]


@pytest.mark.parametrize(
    "host",
    ["ce.example.org", "CE01.example.org", "127.0.0.1", "::1", "fe80::1%eth0", "sgm@ce.example.org", "ce_1", "x" * 255],
)
def test_host_names_and_addresses_are_accepted(host):
    assert remote.host_problem(host) is None
    assert remote.check_host(host) == host


@pytest.mark.parametrize(
    "host, reason",
    [
        ("", "empty"),
        ("-oProxyCommand=touch x", "cannot begin with '-'"),
        ("-p", "cannot begin with '-'"),
        ("ce;touch x", "only letters"),
        ("$(touch x)", "only letters"),
        ("`touch x`", "only letters"),
        ("ce host", "only letters"),
        ("ce\n", "only letters"),
        ("ce\tx", "only letters"),
        ("a|b", "only letters"),
        ("a&b", "only letters"),
        ("a>b", "only letters"),
        ("ce'x", "only letters"),
        ('ce"x', "only letters"),
        ("ce*", "only letters"),
        ("ce?", "only letters"),
        ("~root", "only letters"),
        ("cé.example.org", "only letters"),
        ("x" * 256, "only letters"),
    ],
)
def test_hosts_that_could_be_an_option_or_reach_a_shell_are_refused(host, reason):
    assert reason in remote.host_problem(host)
    with pytest.raises(UsageError) as caught:
        remote.check_host(host)
    assert caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    "host, names, expected",
    [
        ("localhost", ["localhost"], True),
        ("LOCALHOST", ["localhost"], True),
        ("ce.example.org.", ["ce.example.org"], True),
        ("ce.example.org", ["CE.Example.Org."], True),
        ("ce", ["localhost", "ce"], True),
        ("ce.example.org", ["ce"], False),
        ("127.0.0.1", ["localhost", "ce", "ce.example.org"], False),
        ("::1", ["localhost"], False),
        ("root@localhost", ["localhost"], False),
        ("ce", ["", "localhost"], False),
    ],
)
def test_names_this_machine(host, names, expected):
    assert remote.names_this_machine(host, names) is expected


def test_names_are_looked_up_only_until_one_matches(monkeypatch):
    def no_dns():
        raise AssertionError("getfqdn() must not run when an earlier name matched")

    monkeypatch.setattr(socket, "getfqdn", no_dns)
    assert remote.is_local("localhost", {})
    assert remote.is_local(socket.gethostname(), {})


def site_info(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "site-info.def"
    path.write_text(text)
    return {"GIP_SITE_INFO": str(path)}


def test_ce_host_of_site_info_names_this_machine(tmp_path):
    environ = site_info(tmp_path, "SITE_NAME=Test\nCE_HOST=ce01.example.org\n")
    assert remote.site_ce_host(environ) == "ce01.example.org"
    assert remote.is_local("ce01.example.org", environ)
    assert remote.is_local("CE01.example.org.", environ)
    assert not remote.is_local("ce02.example.org", environ)


def test_the_site_info_option_wins_over_the_environment(tmp_path):
    environ = site_info(tmp_path, "CE_HOST=ce01.example.org\n")
    other = tmp_path / "other.def"
    other.write_text("CE_HOST=ce02.example.org\n")
    assert remote.is_local("ce02.example.org", environ, str(other))
    assert not remote.is_local("ce01.example.org", environ, str(other))


@pytest.fixture
def remote_log(capsys):
    """What gip.remote says on stderr at the debug level (the autouse fixture puts the level back)."""
    log.configure("gip-tags", 2)

    class Said:
        @property
        def text(self):
            return capsys.readouterr().err

    return Said()


@pytest.mark.parametrize(
    "text, logged",
    [
        (None, "cannot read site-info.def"),
        ("CE_HOST=$(hostname)\n", "unsupported shell syntax"),
        ("CE_HOST=ce01.example.org\nX=`hostname`\n", "unsupported shell syntax"),
        (b"CE_HOST=\xff\n", "not UTF-8"),
    ],
)
def test_an_unusable_site_info_only_means_ce_host_is_unknown(tmp_path, remote_log, text, logged):
    path = tmp_path / "site-info.def"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    environ = {"GIP_SITE_INFO": str(path)}
    assert remote.site_ce_host(environ) is None
    assert not remote.is_local("ce01.example.org", environ)
    assert logged in remote_log.text


def test_a_setting_gip_ignores_leaves_ce_host_known(tmp_path):
    path = tmp_path / "site-info.def"
    path.write_text("CE_HOST=ce01.example.org\nVOS='atlas CMS'\nCE_STATE=\n")
    assert remote.site_ce_host({"GIP_SITE_INFO": str(path)}) == "ce01.example.org"


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ["ssh"]),
        ("ssh -p 2222", ["ssh", "-p", "2222"]),
        ("ssh -p 2222 -i 'my key' -o StrictHostKeyChecking=no", ["ssh", "-p", "2222", "-i", "my key", "-o", "StrictHostKeyChecking=no"]),
        ("/opt/bin/gsissh -p 1975", ["/opt/bin/gsissh", "-p", "1975"]),
        ("ssh $(touch x)", ["ssh", "$(touch", "x)"]),
    ],
)
def test_gip_ssh_is_split_as_words(value, expected):
    environ = {} if value is None else {"GIP_SSH": value}
    assert remote.ssh_prefix(environ) == expected


@pytest.mark.parametrize("value", ["", "   ", "ssh -i 'unterminated"])
def test_an_unusable_gip_ssh_is_a_configuration_error(value):
    with pytest.raises(ConfigError) as caught:
        remote.ssh_prefix({"GIP_SSH": value})
    assert caught.value.exit_code == EXIT_CONFIG
    assert "GIP_SSH" in str(caught.value)


def test_ssh_argv_keeps_stdin_and_host_apart_and_the_line_whole():
    line = remote.remote_line(["--json", "--vo", "atlas", "add", "VO-atlas-a b"])
    command = remote.ssh_argv(["ssh", "-p", "2222"], "ce.example.org", line)
    assert command == ["ssh", "-p", "2222", "-n", "--", "ce.example.org", line]
    assert line == "gip-tags --json --vo atlas add 'VO-atlas-a b'"


def test_ssh_argv_refuses_a_host_that_ssh_would_read_as_an_option():
    with pytest.raises(UsageError):
        remote.ssh_argv(["ssh"], "-oProxyCommand=touch /tmp/x", "gip-tags list")


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=20), max_size=6))
@settings(max_examples=300, deadline=None)
def test_remote_line_splits_back_into_the_same_words(words):
    assert shlex.split(remote.remote_line(words)) == [remote.REMOTE_PROGRAM, *words]


def fake_gip_tags(folder: Path) -> Path:
    """A gip-tags that prints its arguments as the JSON document, for shells to call."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / "gip-tags"
    program.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys
        print(json.dumps({{"exit_code": 0, "argv": sys.argv[1:]}}))
    """))
    program.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_hostile_words_reach_the_remote_program_unchanged_through_a_shell(tmp_path, shell):
    """With every check bypassed, the quoting alone keeps the shell from running anything."""
    marker = tmp_path / "injected"
    words = [word.format(marker=marker) for word in HOSTILE_WORDS]
    bin_dir = fake_gip_tags(tmp_path)
    line = remote.remote_line(words)
    completed = subprocess.run(
        [shell, "-c", line], capture_output=True, cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}, check=True,
    )
    assert json.loads(completed.stdout)["argv"] == words
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def fake_ssh(folder: Path, bin_dir: Path) -> Path:
    """An ssh that checks its arguments the way OpenSSH reads them, then runs the line in sh."""
    program = folder / "fake-ssh"
    program.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, subprocess, sys
        args = sys.argv[1:]
        with open({str(folder / "ssh-argv.json")!r}, "w") as record:
            json.dump({{"argv": args, "stdin": sys.stdin.read()}}, record)
        end = args.index("--")
        host, line = args[end + 1:]
        if host == "unreachable.example.org":
            sys.stderr.write("ssh: connect to host unreachable.example.org port 22: Connection refused\\n")
            sys.exit(255)
        env = {{"PATH": {f"{bin_dir}:/usr/bin:/bin"!r}}}
        sys.exit(subprocess.run(["sh", "-c", line], env=env).returncode)
    """))
    program.chmod(0o755)
    return program


@pytest.fixture
def ssh_world(tmp_path):
    bin_dir = fake_gip_tags(tmp_path)
    program = fake_ssh(tmp_path, bin_dir)
    return tmp_path, {"GIP_SSH": f"{program} -p 2222"}


def test_run_remote_passes_every_word_and_no_stdin(ssh_world):
    folder, environ = ssh_world
    argv = ["--json", "--vo", "atlas", "add", "VO-atlas-x"]
    reply = remote.run_remote("ce.example.org", argv, environ)
    assert reply.exit_code == 0
    assert reply.document["argv"] == argv
    recorded = json.loads((folder / "ssh-argv.json").read_text())
    assert recorded["argv"] == ["-p", "2222", "-n", "--", "ce.example.org", remote.remote_line(argv)]
    assert recorded["stdin"] == ""


def test_run_remote_keeps_hostile_words_whole(ssh_world):
    folder, environ = ssh_world
    marker = folder / "injected"
    words = [word.format(marker=marker) for word in HOSTILE_WORDS]
    reply = remote.run_remote("ce.example.org", words, environ)
    assert reply.document["argv"] == words
    assert not marker.exists()


def test_an_ssh_failure_is_one_clear_error_with_its_message(ssh_world):
    _, environ = ssh_world
    with pytest.raises(GipError) as caught:
        remote.run_remote("unreachable.example.org", ["--json", "list"], environ)
    assert caught.value.exit_code == EXIT_FAILED
    assert str(caught.value) == (
        "unreachable.example.org: ssh failed (exit 255): "
        "ssh: connect to host unreachable.example.org port 22: Connection refused"
    )


def test_a_missing_ssh_program_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        remote.run_remote("ce.example.org", ["list"], {"GIP_SSH": str(tmp_path / "no-ssh")})
    assert "no-ssh" in str(caught.value) and "GIP_SSH" in str(caught.value)


@pytest.mark.parametrize(
    "returncode, stdout, expected_code",
    [
        (0, b'{"exit_code": 0, "tags": []}', 0),
        (1, b'{"exit_code": 1, "error": "refused"}\n', 1),
        (3, b'{"exit_code": 3, "error": "bad config"}', 3),
        (1, b'{"error": "no code in it"}', 1),
        (2, b'{"exit_code": true}', 2),
        # not gip-tags's codes: a failure, never a success
        (0, b'{"exit_code": 256}', 1),
        (0, b'{"exit_code": -1}', 1),
        (0, b'{"tags": []}', 1),
    ],
)
def test_the_remote_document_and_exit_code_come_back(returncode, stdout, expected_code):
    reply = remote.parse_reply("ce", returncode, stdout, b"gip-tags: WARNING: something\n")
    assert reply.exit_code == expected_code
    assert reply.document == json.loads(stdout)
    assert reply.messages == ["gip-tags: WARNING: something"]


def test_the_remote_stderr_in_a_failure_cannot_drive_the_terminal():
    with pytest.raises(GipError) as caught:
        remote.parse_reply("ce", 7, b"", b"banner\x1b[31mRED\x07\nsecond\n")
    assert str(caught.value) == "ce: no answer from gip-tags (exit 7): banner\\x1b[31mRED\\x07 | second"


def test_a_reply_nested_too_deep_is_no_answer():
    with pytest.raises(GipError, match="no answer from gip-tags"):
        remote.parse_reply("ce", 0, b"[" * 100000 + b"]" * 100000, b"")


def test_a_banner_from_a_login_script_before_the_document_is_skipped():
    reply = remote.parse_reply("ce", 0, b"Welcome to ce01!\n{\"exit_code\": 0, \"tags\": [\"VO-a-b\"]}\n", b"")
    assert (reply.exit_code, reply.document["tags"]) == (0, ["VO-a-b"])


@pytest.mark.parametrize(
    "returncode, stdout, stderr, message",
    [
        (255, b"", b"ssh: Could not resolve hostname ce: Name or service not known\n",
         "ce: ssh failed (exit 255): ssh: Could not resolve hostname ce: Name or service not known"),
        (127, b"", b"bash: line 1: gip-tags: command not found\n",
         "ce: no answer from gip-tags (exit 127): bash: line 1: gip-tags: command not found"),
        (1, b"[1, 2]", b"", "ce: no answer from gip-tags (exit 1)"),
        (0, b"\xff\xfe", b"", "ce: no answer from gip-tags (exit 0)"),
        (255, b"", b"".join(b"line %d\n" % n for n in range(10)),
         "ce: ssh failed (exit 255): line 5 | line 6 | line 7 | line 8 | line 9"),
    ],
)
def test_no_document_is_an_error_with_the_tail_of_stderr(returncode, stdout, stderr, message):
    with pytest.raises(GipError) as caught:
        remote.parse_reply("ce", returncode, stdout, stderr)
    assert str(caught.value) == message
    assert caught.value.exit_code == EXIT_FAILED


def test_runner_for_this_machine_runs_here_and_for_others_over_ssh(ssh_world):
    _, environ = ssh_world
    for host in (None, "localhost", socket.gethostname()):
        runner = remote.runner_for(host, environ)
        assert (runner.func, runner.keywords) == (remote.run_local, {"environ": environ})
    runner = remote.runner_for("127.0.0.1", environ)
    assert (runner.func, runner.args) == (remote.run_remote, ("127.0.0.1",))
    assert runner(["--json", "list"]).document["argv"] == ["--json", "list"]


def test_runner_for_refuses_a_bad_host_before_anything_runs(ssh_world):
    folder, environ = ssh_world
    with pytest.raises(UsageError):
        remote.runner_for("-oProxyCommand=touch x", environ)
    assert not (folder / "ssh-argv.json").exists()


def test_remote_module_imports_no_subprocess_or_json_until_used():
    code = "import sys, gip.remote; print('subprocess' in sys.modules, 'json' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert completed.stdout.split() == ["False", "False"]
