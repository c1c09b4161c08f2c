"""README.md promises: each test here fails when the code and the README part ways."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gip.errors import EXIT_CODES, exit_code_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def code_blocks(text: str) -> list:
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL)


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    first = code_blocks(README)[0].splitlines()
    assert [line.split()[0] for line in first] == ["scripts/example", "scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*scripts/test\s*$", ci, re.MULTILINE)
    assert "GIP_REQUIRE_INTEGRATION=1" in ci
    for script in ("example", "test", "setup"):
        path = ROOT / "scripts" / script
        assert path.stat().st_mode & 0o111, f"{path} is not executable"


def test_readme_exit_code_table_equals_the_code():
    rows = re.findall(r"^\| (\d) \| (.+) \|$", README, re.MULTILINE)
    assert [(int(code), meaning) for code, meaning in rows] == list(EXIT_CODES)


@pytest.mark.parametrize(
    "module, function",
    [
        ("gip.cli.provider", "main"),
        ("gip.cli.tags", "main"),
        ("gip.cli.legacy", "lcg_tags_main"),
        ("gip.cli.legacy", "manage_vo_tag_main"),
    ],
)
def test_every_program_shows_the_exit_code_table_in_help(module, function, capsys):
    main = getattr(__import__(module, fromlist=[function]), function)
    try:
        code = main(["--help"])
    except SystemExit as stop:
        code = stop.code
    assert code == 0
    assert exit_code_table() in capsys.readouterr().out


@pytest.mark.parametrize("command", ["plugin", "merged", "wrap", "check"])
def test_every_provider_subcommand_is_documented(command):
    assert f"gip-provider {command}" in README or f"|{command}|" in README.replace(" ", "")


@pytest.mark.parametrize(
    "command", ["list", "add", "remove", "replace", "clean", "history", "restore", "export", "import", "init"]
)
def test_every_gip_tags_command_is_documented(command):
    assert re.search(rf"gip-tags .*\b{command}\b|^  {command}\b", README, re.MULTILINE)


def environment_variables() -> set:
    names = set()
    sources = list((ROOT / "gip").rglob("*.py")) + list((ROOT / "etc" / "bdii").iterdir())
    for path in sources:
        names.update(re.findall(r"\b(GIP_[A-Z0-9_]+|EDG_LOCATION_VAR|X509_USER_PROXY)\b", path.read_text()))
    return names - {"GIP_REQUIRE_INTEGRATION"}


def test_every_environment_variable_is_documented():
    found = environment_variables()
    assert {"GIP_SITE_INFO", "GIP_STATIC_LDIF", "EDG_LOCATION_VAR", "GIP_SSH"} <= found
    undocumented = sorted(name for name in found if f"`{name}`" not in README)
    assert undocumented == []


def test_every_site_info_key_the_templates_read_is_documented():
    keys = set()
    for path in (ROOT / "templates").glob("*.j2"):
        keys.update(re.findall(r"\bcfg\.([A-Z][A-Z0-9_]+)", path.read_text()))
    assert {"CE_HOST", "CE_OS"} <= keys
    undocumented = sorted(key for key in keys if f"`{key}`" not in README)
    assert undocumented == []
