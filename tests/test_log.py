"""gip's messages on stderr: levels from -v/-q, the program's name, timestamps for the BDII's log."""

from __future__ import annotations

import io
import re
import sys

import pytest

from gip import log


@pytest.mark.parametrize(
    "verbosity, shown",
    [
        (-2, []),
        (-1, ["ERROR"]),
        (0, ["WARNING", "ERROR"]),
        (1, ["INFO", "WARNING", "ERROR"]),
        (2, ["DEBUG", "INFO", "WARNING", "ERROR"]),
        (5, ["DEBUG", "INFO", "WARNING", "ERROR"]),
    ],
)
def test_verbosity_sets_the_lowest_level_written(capsys, verbosity, shown):
    log.configure("gip-provider", verbosity)
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    written = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in written] == shown
    assert all(line.startswith("gip-provider: ") for line in written)


def test_a_message_is_formatted_with_its_arguments_once(capsys):
    log.configure("gip-tags", 0)
    log.warning("%s: %d tags", "atlas.ldif", 3)
    log.warning("100% literal, no arguments")
    assert capsys.readouterr().err == "gip-tags: WARNING: atlas.ldif: 3 tags\ngip-tags: WARNING: 100% literal, no arguments\n"


def test_timestamps_lead_each_line_for_the_bdii_log(capsys):
    log.configure("gip-provider", 0, timestamps=True)
    log.error("broken")
    line = capsys.readouterr().err
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d gip-provider: ERROR: broken\n", line)


def test_messages_go_to_stderr_as_it_is_when_they_are_written(monkeypatch):
    log.configure("gip", 0)
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    log.warning("one")
    monkeypatch.setattr(sys, "stderr", second)
    log.warning("two")
    assert (first.getvalue(), second.getvalue()) == ("gip: WARNING: one\n", "gip: WARNING: two\n")


def test_the_exception_being_handled_follows_a_debug_message(capsys):
    log.configure("gip-tags", 2)
    try:
        raise OSError("disk gone")
    except OSError:
        log.debug("unexpected", exc_info=True)
    said = capsys.readouterr().err
    assert said.startswith("gip-tags: DEBUG: unexpected\nTraceback (most recent call last):\n")
    assert said.rstrip().endswith("OSError: disk gone")


def test_a_closed_stderr_costs_the_message_only(monkeypatch):
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    log.error("nobody hears this")
    monkeypatch.setattr(sys, "stderr", None)
    log.error("nor this")


def test_unconfigured_warnings_are_written_and_less_is_not(capsys):
    log.restore(("gip", log.WARNING, False))
    log.info("quiet")
    log.warning("loud")
    assert capsys.readouterr().err == "gip: WARNING: loud\n"


def test_settings_come_back_as_they_were():
    log.configure("lcg-tags", 2, timestamps=True)
    saved = log.settings()
    log.configure("gip-provider", -2)
    log.restore(saved)
    assert log.settings() == ("lcg-tags", log.DEBUG, True)
