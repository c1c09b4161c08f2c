from __future__ import annotations

import os
from pathlib import Path

import pytest

from gip.errors import UsageError
from gip.report import Problem
from gip.tagtree import (
    TagSource,
    default_info_dir,
    legacy_file_path,
    scan_info_dir,
    tag_file_path,
    vo_folder,
)


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, "/opt/edg/var/info"),
        ({"EDG_LOCATION_VAR": ""}, "/opt/edg/var/info"),
        ({"EDG_LOCATION_VAR": "/srv/edg"}, "/srv/edg/info"),
    ],
)
def test_default_info_dir(environ, expected):
    assert default_info_dir(environ) == Path(expected)


def test_paths_of_global_and_subcluster_files(tmp_path):
    assert tag_file_path(tmp_path, "atlas") == tmp_path / "atlas" / "atlas.ldif"
    assert tag_file_path(tmp_path, "t2k.org", "sc1") == tmp_path / "sc1" / "t2k.org" / "t2k.org.ldif"
    assert legacy_file_path(tmp_path, "cms") == tmp_path / "cms" / "cms.list"


@pytest.mark.parametrize("vo, sc", [("../etc", None), ("a/b", None), ("", None), ("atlas", "../x"), ("atlas", "a/b")])
def test_paths_refuse_names_that_leave_the_folder(tmp_path, vo, sc):
    with pytest.raises(UsageError):
        vo_folder(tmp_path, vo, sc)


def test_scan_finds_global_subcluster_and_legacy_files_in_name_order(tmp_path):
    write(tmp_path / "cms" / "cms.ldif")
    write(tmp_path / "atlas" / "atlas.ldif")
    write(tmp_path / "atlas" / "atlas.list")  # .ldif wins where both exist
    write(tmp_path / "lhcb" / "lhcb.list")
    write(tmp_path / "sc1" / "atlas" / "atlas.ldif")
    write(tmp_path / "empty" / "notes.txt")
    scan = scan_info_dir(tmp_path)
    assert scan.sources == [
        TagSource("atlas", None, tmp_path / "atlas" / "atlas.ldif"),
        TagSource("cms", None, tmp_path / "cms" / "cms.ldif"),
        TagSource("lhcb", None, tmp_path / "lhcb" / "lhcb.list"),
        TagSource("atlas", "sc1", tmp_path / "sc1" / "atlas" / "atlas.ldif"),
    ]
    assert [s.legacy for s in scan.sources] == [False, False, True, False]
    assert scan.problems == []


def test_scan_reports_vos_not_in_vos_and_bad_names(tmp_path):
    write(tmp_path / "atlas" / "atlas.ldif")
    write(tmp_path / "zeus" / "zeus.ldif")
    write(tmp_path / "Bad" / "Bad.ldif")
    write(tmp_path / "sc1" / "zeus" / "zeus.ldif")
    scan = scan_info_dir(tmp_path, vos={"atlas"})
    assert [s.vo for s in scan.sources] == ["atlas"]
    assert [str(p) for p in scan.problems] == [
        f"{tmp_path}/Bad/Bad.ldif: skipped: a VO name is lower-case ASCII letters, digits and ._- and starts with a letter or digit",
        f"{tmp_path}/sc1/zeus/zeus.ldif: skipped: VO 'zeus' is not in VOS of site-info.def",
        f"{tmp_path}/zeus/zeus.ldif: skipped: VO 'zeus' is not in VOS of site-info.def",
    ]


def test_scan_ignores_dot_folders_and_reports_a_missing_info_dir(tmp_path):
    write(tmp_path / ".atlas" / ".atlas.ldif")
    assert scan_info_dir(tmp_path).sources == []
    missing = scan_info_dir(tmp_path / "nope")
    assert missing.sources == []
    assert [p.reason for p in missing.problems] == ["no such folder: no tags are read from it"]


def test_scan_follows_links_and_takes_only_files(tmp_path):
    write(tmp_path / "atlas" / "atlas.list")
    (tmp_path / "atlas" / "atlas.ldif").mkdir()  # a folder with the tag file's name is no tag file
    write(tmp_path / "cms" / "target.txt")
    (tmp_path / "cms" / "cms.ldif").symlink_to("target.txt")
    write(tmp_path / "lhcb" / "lhcb.list")
    (tmp_path / "lhcb" / "lhcb.ldif").symlink_to("missing")
    (tmp_path / "alias").symlink_to("cms")
    (tmp_path / "empty").mkdir()
    write(tmp_path / "notes.txt")
    scan = scan_info_dir(tmp_path)
    assert scan.sources == [
        TagSource("atlas", None, tmp_path / "atlas" / "atlas.list"),
        TagSource("cms", None, tmp_path / "cms" / "cms.ldif"),
        TagSource("lhcb", None, tmp_path / "lhcb" / "lhcb.list"),
    ]
    reason = "not a file (a folder, a broken link, a device?): {} beside it is read instead"
    assert scan.problems == [
        Problem(str(tmp_path / "atlas" / "atlas.ldif"), None, reason.format("atlas.list")),
        Problem(str(tmp_path / "lhcb" / "lhcb.ldif"), None, reason.format("lhcb.list")),
    ]


def test_a_tag_file_that_is_no_file_is_reported_and_never_opened(tmp_path):
    (tmp_path / "atlas").mkdir()
    (tmp_path / "atlas" / "atlas.ldif").symlink_to("/nonexistent/atlas.ldif")  # a share not mounted
    (tmp_path / "cms").mkdir()
    os.mkfifo(tmp_path / "cms" / "cms.list")  # opening it would wait for a writer
    write(tmp_path / "sc1" / "lhcb" / "target")
    (tmp_path / "sc1" / "lhcb" / "lhcb.ldif").symlink_to("missing")
    scan = scan_info_dir(tmp_path, vos=["atlas", "cms", "lhcb"])
    assert scan.sources == []
    reason = "not a file (a folder, a broken link, a device?): VO {}'s tags from it are not published"
    assert scan.problems == [
        Problem(str(tmp_path / "atlas" / "atlas.ldif"), None, reason.format("atlas")),
        Problem(str(tmp_path / "cms" / "cms.list"), None, reason.format("cms")),
        Problem(str(tmp_path / "sc1" / "lhcb" / "lhcb.ldif"), None, reason.format("lhcb")),
    ]


def test_a_folder_that_cannot_be_listed_still_gives_its_own_file(tmp_path):
    write(tmp_path / "sc1" / "sc1.ldif")
    write(tmp_path / "sc1" / "atlas" / "atlas.ldif")
    (tmp_path / "sc1" / "loop").symlink_to("loop")  # a link to itself fails the listing of sc1
    write(tmp_path / "sc2" / "atlas" / "atlas.ldif")
    scan = scan_info_dir(tmp_path)
    assert scan.sources == [
        TagSource("sc1", None, tmp_path / "sc1" / "sc1.ldif"),
        TagSource("atlas", "sc2", tmp_path / "sc2" / "atlas" / "atlas.ldif"),
    ]
    assert [str(p) for p in scan.problems] == [f"{tmp_path}/sc1: cannot list: Too many levels of symbolic links"]


@pytest.mark.parametrize("info", [".", "", "./"])
def test_scan_of_a_relative_folder_gives_clean_paths(tmp_path, monkeypatch, info):
    write(tmp_path / "atlas" / "atlas.ldif")
    write(tmp_path / "sc1" / "Bad" / "Bad.ldif")
    monkeypatch.chdir(tmp_path)
    scan = scan_info_dir(Path(info))
    assert [(s.vo, s.subcluster, str(s.path)) for s in scan.sources] == [("atlas", None, "atlas/atlas.ldif")]
    assert [p.path for p in scan.problems] == ["sc1/Bad/Bad.ldif"]
