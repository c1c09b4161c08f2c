"""Renders kept between runs (gip.rendercache): a kept render prints exactly what a fresh one
prints, whatever the tags are now; anything it was made from that changes makes a fresh render;
a damaged record or an unsafe folder costs time, never output; tags are never kept."""

from __future__ import annotations

import binascii
import marshal
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from gip.cli.provider import Options, build
from gip.publish import (
    APPLICATION_READS,
    APPLICATION_TEMPLATE,
    MODE_MERGED_STATIC,
    MODE_MERGED_TEMPLATES,
    Publisher,
    builtin_template_dir,
    parts_bytes,
    template_dirs,
)
from gip.rendercache import CACHE_VARIABLE, RenderCache

HERE = Path(__file__).resolve().parent
ETC = HERE.parent / "etc"
GLUE1_FILES = ("static-file-CE.ldif", "static-file-Cluster.ldif")
GLUE2_FILES = ("ComputingService.ldif", "ComputingManager.ldif", "ExecutionEnvironment.ldif", "ComputingShare.ldif")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A copy of the example site, to change between runs."""
    return Path(shutil.copytree(ETC, tmp_path / "site"))


@pytest.fixture
def cache(tmp_path: Path) -> RenderCache:
    return RenderCache(tmp_path / "cache")


def rendered(site: Path, glue: str, base: str = "templates", cache: Optional[RenderCache] = None,
             templates: Optional[Path] = None) -> Tuple[bytes, List[str], Publisher]:
    """One merged output of ``site``: its bytes, the Problems met while rendering, and the Publisher."""
    options = Options(
        site_info=site / "site-info.def",
        static_ldif=tuple(str(site / "static" / name) for name in GLUE1_FILES + GLUE2_FILES),
        info_dir=site / "info",
        templates=templates,
        every_case=False,
        glue=glue,
        base=base,
    )
    built, problems, _ = build(options, base, bdii_reads_static=False)
    publisher = Publisher(template_dirs(templates, problems), cache)
    mode = MODE_MERGED_TEMPLATES if base == "templates" else MODE_MERGED_STATIC
    data = b"".join(parts_bytes(publisher.render_site_parts(built, mode, glue)))
    return data, [str(problem) for problem in publisher.problems], publisher


def change_tags(site: Path) -> None:
    """One tag gone, two new ones, a VO with none left and a new VO file: every way the tags change."""
    atlas = site / "info" / "atlas" / "atlas.ldif"
    text = atlas.read_text()
    assert "VO-atlas-production-17.2.1" in text
    atlas.write_text(text.replace("VO-atlas-production-17.2.1", "") + "VO-atlas-new-1.0\nVO-atlas-new-2.0\n")
    (site / "info" / "cms" / "cms.ldif").write_text("# nothing left\n")
    (site / "info" / "ops" / "ops.ldif").write_text("VO-ops-added-3\n")


def records(cache: RenderCache) -> List[Path]:
    return sorted(cache.folder.glob("*.record")) if cache.folder.is_dir() else []


@pytest.mark.parametrize("glue", ["1", "2", "both"])
def test_a_kept_render_prints_what_a_fresh_render_prints_with_the_tags_of_its_own_run(site, cache, glue):
    first = rendered(site, glue, cache=cache)
    assert first[:2] == rendered(site, glue)[:2]
    assert records(cache)
    change_tags(site)
    fresh = rendered(site, glue)
    kept = rendered(site, glue, cache=cache)
    assert kept[:2] == fresh[:2]
    assert kept[0] != first[0]
    assert b"VO-atlas-new-2.0" in kept[0] and b"VO-atlas-production-17.2.1\n" not in kept[0]
    # Read back, not rendered: the run made no Jinja2 environment.
    assert kept[2]._env is None


@pytest.mark.parametrize("glue", ["1", "both"])
def test_no_tag_is_kept(site, cache, glue):
    output = rendered(site, glue, cache=cache)[0]
    assert b"VO-atlas-production-17.2.2" in output
    assert records(cache)
    for path in records(cache):
        # The key holds site-info.def's values (CE_RUNTIMEENV among them); what is kept holds no value of a tag list.
        kept = repr(read_record(path)[2])
        assert "VO-atlas" not in kept and "VO-cms" not in kept and "GLITE-3_2_0" not in kept


def test_a_changed_site_info_value_is_rendered_again(site, cache):
    rendered(site, "both", cache=cache)
    site_info = site / "site-info.def"
    text = site_info.read_text()
    assert "CE_STATE=PilotSCAS" in text
    site_info.write_text(text.replace("CE_STATE=PilotSCAS", "CE_STATE=Draining"))
    kept = rendered(site, "both", cache=cache)
    assert kept[:2] == rendered(site, "both")[:2]
    assert b"GlueCEStateStatus: Draining" in kept[0] and b"PilotSCAS" not in kept[0]
    # One record per output and site-info.def, however often it changes.
    assert len(records(cache)) == 2


def test_what_a_kept_render_reported_is_reported_again(site, cache):
    site_info = site / "site-info.def"
    site_info.write_text(site_info.read_text().replace("CE_CPU_MODEL=Xeon", "CE_CPU_MODEL='Xeon dn: x'"))
    fresh = rendered(site, "both")
    assert [problem for problem in fresh[1] if "GlueHostProcessorModel" in problem or "CPUModel" in problem]
    assert rendered(site, "both", cache=cache)[:2] == fresh[:2]
    kept = rendered(site, "both", cache=cache)
    assert kept[2]._env is None
    assert kept[:2] == fresh[:2]


def test_an_edited_template_is_rendered_again(site, cache, tmp_path, monkeypatch):
    own = Path(shutil.copytree(builtin_template_dir(), tmp_path / "templates"))
    monkeypatch.setattr("gip.publish.builtin_template_dir", lambda: own)
    before = rendered(site, "1", cache=cache)[0]
    assert b"GlueSubClusterTmpDir: /tmp\n" in before
    subcluster = own / "glue1-subcluster.ldif.j2"
    subcluster.write_text(subcluster.read_text().replace("GlueSubClusterTmpDir: /tmp", "GlueSubClusterTmpDir: /scratch"))
    after = rendered(site, "1", cache=cache)[0]
    assert after == before.replace(b"GlueSubClusterTmpDir: /tmp\n", b"GlueSubClusterTmpDir: /scratch\n")


def test_a_change_to_gips_modules_is_rendered_again(site, cache, monkeypatch):
    rendered(site, "1", cache=cache)
    assert rendered(site, "1", cache=cache)[2]._env is None
    monkeypatch.setattr("gip.rendercache._CODE_IDENTITY", ("another gip",))
    assert rendered(site, "1", cache=cache)[2]._env is not None


def test_a_site_template_folder_is_rendered_every_run(site, cache, tmp_path):
    folder = tmp_path / "site-templates"
    folder.mkdir()
    (folder / "glue1-cluster.ldif.j2").write_text("{#- nothing of the cluster #}\n")
    first = rendered(site, "1", cache=cache, templates=folder)
    assert b"objectClass: GlueCluster\n" not in first[0]
    assert records(cache) == []
    assert rendered(site, "1", cache=cache, templates=folder)[2]._env is not None


def test_a_site_application_template_is_never_kept(site, cache, tmp_path):
    folder = tmp_path / "site-templates"
    folder.mkdir()
    shutil.copy(builtin_template_dir() / APPLICATION_TEMPLATE, folder / APPLICATION_TEMPLATE)
    first = rendered(site, "2", base="static", cache=cache, templates=folder)
    assert first[:2] == rendered(site, "2", base="static", templates=folder)[:2]
    assert records(cache) == []


def test_what_the_templates_print_otherwise_than_described_is_not_kept(site, cache, tmp_path, monkeypatch):
    """A template that prints the tags in a way gip cannot describe (here: with an entry as their
    origin) is rendered as it is and nothing of it kept."""
    own = Path(shutil.copytree(builtin_template_dir(), tmp_path / "templates"))
    monkeypatch.setattr("gip.publish.builtin_template_dir", lambda: own)
    subcluster = own / "glue1-subcluster.ldif.j2"
    text = subcluster.read_text()
    assert 'sc.tags | lines("GlueHostApplicationSoftwareRunTimeEnvironment")' in text
    subcluster.write_text(text.replace('lines("GlueHostApplicationSoftwareRunTimeEnvironment")',
                                       'lines("GlueHostApplicationSoftwareRunTimeEnvironment", sc)'))
    first = rendered(site, "1", cache=cache)
    assert first[:2] == rendered(site, "1")[:2]
    assert b"VO-atlas-production-17.2.2" in first[0]
    assert records(cache) == []


def test_static_merged_glue2_keeps_the_application_pieces_only(site, cache):
    first = rendered(site, "2", base="static", cache=cache)
    assert first[:2] == rendered(site, "2", base="static")[:2]
    assert len(records(cache)) == 2  # one per ExecutionEnvironment of the example's static LDIF
    change_tags(site)
    kept = rendered(site, "2", base="static", cache=cache)
    assert kept[:2] == rendered(site, "2", base="static")[:2]
    assert b"GLUE2ApplicationEnvironmentAppName: VO-atlas-new-2.0\n" in kept[0]
    assert kept[2]._env is None


def test_the_application_template_reads_only_what_its_key_holds():
    text = (builtin_template_dir() / APPLICATION_TEMPLATE).read_text()
    read = set(re.findall(r"\benv\.([A-Za-z_][\w.]*)", text))
    assert read == {"application_dn", "application_id", "manager.id", "node.id"}
    assert read <= set(APPLICATION_READS)


def read_record(path: Path) -> Tuple[bytes, bytes, object]:
    """A record file's head line, key and value."""
    head, rest = path.read_bytes().split(b"\n", 1)
    size = int(head.split(b" ")[1])
    return head, rest[:size], marshal.loads(rest[size:])


def write_record(path: Path, key: bytes, value: object) -> None:
    """A whole record, its checksum right: only its value can be wrong."""
    payload = marshal.dumps(value)
    path.write_bytes(b"1 %d %08x\n" % (len(key), binascii.crc32(payload)) + key + payload)


@pytest.mark.parametrize("damage", ["garbage", "cut short", "empty", "a byte changed", "another format",
                                    "another shape", "index out of range", "pieces of another kind",
                                    "a problem of another shape"])
@pytest.mark.parametrize("glue", ["1", "both"])
def test_a_damaged_record_costs_only_time(site, cache, damage, glue):
    expected = rendered(site, glue)[:2]
    rendered(site, glue, cache=cache)
    # The entries; with GLUE 2 the pieces of the one ExecutionEnvironment's ApplicationEnvironment too.
    assert len(records(cache)) == (1 if glue == "1" else 2)
    for path in records(cache):
        data = path.read_bytes()
        head, key, value = read_record(path)
        entries = len(value) == 3  # type: ignore[arg-type]  # else an ApplicationEnvironment's pieces
        if damage == "garbage":
            path.write_bytes(b"\x00not a record" * 3)
        elif damage == "cut short":
            path.write_bytes(data[:-len(data) // 3])
        elif damage == "empty":
            path.write_bytes(b"")
        elif damage == "a byte changed":
            # A byte of the text kept, or of the pieces: only the checksum tells.
            at = data.rindex(b"objectClass")
            path.write_bytes(data[:at] + b"O" + data[at + 1:])
        elif damage == "another format":
            path.write_bytes(b"0" + data[1:])
        elif damage == "another shape":
            write_record(path, key, [value])
        elif damage == "index out of range" and entries:
            pieces, described, problems = value  # type: ignore[misc]
            write_record(path, key, (pieces, [(what[0], 99, *what[2:]) for what in described], problems))
        elif damage == "pieces of another kind":
            pieces = ["text"] if entries else [b"bytes"]
            write_record(path, key, (pieces, *value[1:]))  # type: ignore[index]
        else:
            write_record(path, key, (*value[:-1], [("path", "line", "reason", "")]))  # type: ignore[index]
    assert rendered(site, glue, cache=cache)[:2] == expected


def test_a_record_keeps_one_slot(cache):
    cache.put("slot", "key one", (b"one", [1]))
    assert cache.get("slot", "key one") == (b"one", [1])
    assert cache.get("slot", "key two") is None
    assert cache.get("another slot", "key one") is None
    cache.put("slot", "key two", "two")
    assert cache.get("slot", "key one") is None
    assert cache.get("slot", "key two") == "two"
    assert len(records(cache)) == 1
    assert not list(cache.folder.glob("*.partial"))


def test_compiled_templates_are_kept_in_the_cache_folder(site, cache, tmp_path, monkeypatch):
    """A site's own templates are rendered every run, but compiled once while their source is unchanged."""
    import jinja2

    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(builtin_template_dir() / "glue1-ce.ldif.j2", own)
    first, _, publisher = rendered(site, "both", cache=cache, templates=own)
    assert publisher.env.bytecode_cache is not None
    kept = sorted(cache.folder.glob("jinja2-*.cache"))
    assert len(kept) >= 2

    def compiled(*args: object, **kwargs: object) -> None:
        raise AssertionError("a template compiled again")

    monkeypatch.setattr(jinja2.Environment, "compile", compiled)
    assert rendered(site, "both", cache=cache, templates=own)[0] == first
    assert sorted(cache.folder.glob("jinja2-*.cache")) == kept


def test_without_a_cache_or_a_safe_folder_no_compiled_template_is_kept(tmp_path):
    assert Publisher([builtin_template_dir()]).env.bytecode_cache is None  # GIP_CACHE_DIR= (empty)
    folder = tmp_path / "open"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    assert Publisher([builtin_template_dir()], RenderCache(folder)).env.bytecode_cache is None
    folder.chmod(0o700)
    assert Publisher([builtin_template_dir()], RenderCache(folder)).env.bytecode_cache is not None


def test_gip_makes_the_folder_for_its_user_alone(cache):
    cache.put("slot", "key", "value")
    assert cache.folder.stat().st_mode & 0o777 == 0o700


def test_a_folder_others_may_write_to_is_not_used(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir()
    good = RenderCache(folder)
    good.put("slot", "key", "value")
    assert good.get("slot", "key") == "value"
    folder.chmod(0o777)
    opened = RenderCache(folder)
    assert opened.get("slot", "key") is None
    opened.put("slot", "other key", "other value")
    assert RenderCache(tmp_path / "open").get("slot", "other key") is None
    folder.chmod(0o700)
    assert RenderCache(folder).get("slot", "key") == "value"


def test_a_folder_that_is_a_link_is_not_used(tmp_path):
    real = tmp_path / "real"
    RenderCache(real).put("slot", "key", "value")
    (tmp_path / "link").symlink_to(real)
    assert RenderCache(tmp_path / "link").get("slot", "key") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a folder to another user")
def test_a_folder_of_another_user_is_not_used(tmp_path):
    folder = tmp_path / "theirs"
    RenderCache(folder).put("slot", "key", "value")
    os.chown(folder, 65534, 65534)
    assert RenderCache(folder).get("slot", "key") is None


def test_where_the_environment_puts_the_cache(tmp_path):
    assert RenderCache.from_environ({CACHE_VARIABLE: ""}) is None
    assert RenderCache.from_environ({CACHE_VARIABLE: str(tmp_path)}).folder == tmp_path  # type: ignore[union-attr]
    uid = os.geteuid()
    assert RenderCache.from_environ({"TMPDIR": str(tmp_path)}).folder == tmp_path / f"gip-{uid}"  # type: ignore
    assert RenderCache.from_environ({}).folder == Path(f"/tmp/gip-{uid}")  # type: ignore[union-attr]


def test_an_unwritable_folder_only_costs_the_record(site, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    cache = RenderCache(blocked / "cache")
    assert rendered(site, "both", cache=cache)[:2] == rendered(site, "both")[:2]


LOADED = "import sys; from gip.cli.provider import main; main(sys.argv[1:]); print('jinja2' in sys.modules, file=sys.stderr)"


@pytest.mark.parametrize("argv", [["merged", "--base", "templates", "--glue", "both"], ["merged", "--glue", "2"]])
def test_the_second_run_of_the_command_loads_no_jinja2(site, tmp_path, argv):
    static = [f"--static-ldif={site}/static/{name}" for name in GLUE1_FILES + GLUE2_FILES]
    command = [sys.executable, "-c", LOADED, argv[0], f"--site-info={site}/site-info.def",
               f"--info-dir={site}/info", *static, *argv[1:]]
    env = {**os.environ, CACHE_VARIABLE: str(tmp_path / "cache")}
    runs = [subprocess.run(command, env=env, capture_output=True, text=True, check=False) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0]
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stderr.splitlines()[-1] == "True"
    assert runs[1].stderr.splitlines()[-1] == "False"
