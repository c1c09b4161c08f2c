"""Export and import of the whole tag tree, so that a reinstalled CE loses nothing.

The export is one JSON document (RFC 8259, UTF-8)::

    {"format": "gip-tags-export", "version": 1, "created": "2024-05-01T12:00:00.000000Z",
     "info_dir": "/opt/edg/var/info",
     "folders": [{"vo": "atlas", "subcluster": null, "mode": "0755", "owner": "atlassgm", "group": "atlas",
                  "files": [{"name": "atlas.ldif", "mode": "0644", "owner": "atlassgm", "group": "atlas",
                             "text": "VO-atlas-production-17.2.1\\n"}]}]}

A folder is a VO's global folder (``subcluster`` null) or its folder under a
SubCluster. Its files are those gip reads or keeps: ``<vo>.ldif``, the legacy
``<vo>.list`` and ``<vo>.list.migrated[.N]``, and the history
``.<vo>.ldif.history``; a file whose bytes are not UTF-8 is held as ``base64``
instead of ``text``. Owners and groups are names, so they survive a reinstall
that numbers accounts differently.

JSON rather than tar: one document that ``--json`` can carry and a person can
read and diff, written and parsed by the standard library alone; and an
import never uses a path from the document: every path is rebuilt from a VO
name and a SubCluster ID checked with the provider's rules and a file name
from the fixed list above, so a crafted export cannot write outside the tree
(a tar's member names would all need that care).

Import checks the whole document first, and refuses (unless forced) where the
tree holds history records made after the export. Each folder is then written
under its tag file's lock, each file atomically (gip.store), and its history
gains an ``import`` record holding the tags the file had before, so ``restore
--steps 1`` undoes it. Where the export has no ``<vo>.ldif`` (or ``<vo>.list``),
one found in the tree is removed, so the provider reads what was exported.
Modes keep their permission bits (and a folder's set-group-ID bit); owners and
groups are set by name where we are root, else where the system lets us.
Export reads without locks: a change made meanwhile shows on the next write as
an external edit.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from gip import history, log, store
from gip.errors import GipError, InputError
from gip.identity import Who, account_name
from gip.tags import subcluster_id_problem, vo_name_problem

FORMAT = "gip-tags-export"
VERSION = 1
_FILE_MODE_BITS = 0o666
_FOLDER_MODE_BITS = 0o2777


def kept_names(vo: str) -> Tuple[str, str, str]:
    """The tag file, the legacy file and the history of ``vo`` (``.list.migrated`` files match a pattern)."""
    return f"{vo}.ldif", f"{vo}.list", f".{vo}.ldif.history"


def is_kept(vo: str, name: str) -> bool:
    if name in kept_names(vo):
        return True
    return re.fullmatch(re.escape(f"{vo}.list.migrated") + r"(\.[0-9]{1,6})?", name) is not None


# Export.


def export_tree(info_dir: Path, created: str) -> Dict[str, Any]:
    """The export document of every tag folder under ``info_dir``."""
    if not info_dir.is_dir():
        raise GipError(f"no tag folder {info_dir}: nothing to export (is --info-dir right?)")
    folders = []
    for vo, subcluster, folder in tag_folders(info_dir):
        files = [_file_entry(folder / name) for name in _kept_files(folder, vo)]
        if files:
            entry = {"vo": vo, "subcluster": subcluster, **_owner_fields(os.stat(folder))}
            entry["files"] = files
            folders.append(entry)
    return {"format": FORMAT, "version": VERSION, "created": created, "info_dir": str(info_dir), "folders": folders}


def dump(document: Dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def save(path: Path, text: str) -> None:
    """Writes the export to ``path``, which the user named."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise GipError(f"cannot write {path}: {error.strerror}") from None


def tag_folders(info_dir: Path) -> Iterator[Tuple[str, Optional[str], Path]]:
    """(vo, subcluster or None, folder) for every folder that could hold a tag file, in a stable order."""
    for top in _subfolders(info_dir):
        if vo_name_problem(top.name) is None:
            yield top.name, None, top
        if subcluster_id_problem(top.name) is None:
            for sub in _subfolders(top):
                if vo_name_problem(sub.name) is None:
                    yield sub.name, top.name, sub


def _subfolders(path: Path) -> List[Path]:
    try:
        with os.scandir(path) as entries:
            return sorted(Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir())
    except OSError:
        return []


def _kept_files(folder: Path, vo: str) -> List[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if is_kept(vo, e.name) and e.is_file())


def _file_entry(path: Path) -> Dict[str, Any]:
    try:
        data = path.read_bytes()
        info = os.stat(path)
    except OSError as error:
        raise GipError(f"cannot read {path}: {error.strerror}; nothing was exported") from None
    entry: Dict[str, Any] = {"name": path.name, **_owner_fields(info)}
    try:
        entry["text"] = data.decode("utf-8")
    except UnicodeDecodeError:
        entry["base64"] = base64.b64encode(data).decode("ascii")
    return entry


def _owner_fields(info: os.stat_result) -> Dict[str, Any]:
    return {"mode": f"{stat.S_IMODE(info.st_mode):04o}", "owner": account_name(info.st_uid),
            "group": _group_name(info.st_gid)}


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# Import.


@dataclass(frozen=True)
class FileEntry:
    name: str
    mode: int
    owner: Optional[str]
    group: Optional[str]
    data: bytes


@dataclass(frozen=True)
class FolderEntry:
    vo: str
    subcluster: Optional[str]
    mode: int
    owner: Optional[str]
    group: Optional[str]
    files: Tuple[FileEntry, ...]


@dataclass(frozen=True)
class Export:
    """A checked export document."""

    created: str
    moment: float
    folders: Tuple[FolderEntry, ...]


def load(data: bytes, source: str) -> Export:
    """Reads and checks an export document; InputError names what is wrong."""
    try:
        document = json.loads(data)
    except ValueError as error:
        raise InputError(source, None, f"not a gip-tags export (not JSON: {error})") from None
    except RecursionError:  # arrays in arrays, deeper than the parser goes
        raise InputError(source, None, "not a gip-tags export (nested too deep)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(source, None, f"not a gip-tags export (no \"format\": \"{FORMAT}\")")
    if document.get("version") != VERSION:
        raise InputError(source, None, f"export version {document.get('version')!r}: this gip reads version {VERSION}")
    created = document.get("created")
    try:
        moment = history.parse_time(str(created))
    except (ValueError, IndexError):
        raise InputError(source, None, f"\"created\": {created!r} is not an ISO 8601 time") from None
    folders = document.get("folders")
    if not isinstance(folders, list):
        raise InputError(source, None, "\"folders\" is not a list")
    entries = tuple(_folder(entry, source, number) for number, entry in enumerate(folders, 1))
    _refuse_duplicates(entries, source)
    return Export(str(created), moment, entries)


def import_tree(info_dir: Path, export: Export, who: Who, lock_timeout: float, force: bool, dry_run: bool,
                clock: Callable[[], float] = time.time) -> List[Path]:
    """Writes every folder of ``export`` into ``info_dir``; returns the files written (or to be)."""
    newer = newer_changes(info_dir, export.moment)
    if newer and not force:
        listed = ", ".join(str(p) for p in newer)
        raise store.Refused(f"the tree holds changes recorded after the export was made ({export.created}): {listed}; "
                            "nothing was imported (--force imports anyway; each file's import can be undone "
                            "with restore --steps 1)", {"newer": [str(p) for p in newer]})
    targets = [(store.locate(info_dir, f.vo, f.subcluster), f) for f in export.folders]
    for paths, folder in targets:
        for file in folder.files:
            store.refuse_symlink(paths.folder / file.name)
    if dry_run:
        return [paths.folder / file.name for paths, folder in targets for file in folder.files]
    written: List[Path] = []
    for paths, folder in targets:
        written.extend(_import_folder(paths, folder, who, lock_timeout, clock, export.created))
    return written


def newer_changes(info_dir: Path, moment: float) -> List[Path]:
    """History files under ``info_dir`` whose last record is later than ``moment``."""
    newer = []
    for vo, _, folder in tag_folders(info_dir):
        path = folder / kept_names(vo)[2]
        last = history.last_record(path)
        if last is None:
            continue
        try:
            when = history.parse_time(str(last.get("time")))
        except (ValueError, IndexError):
            continue
        if when > moment:
            newer.append(path)
    return newer


def _import_folder(paths: store.TagPaths, folder: FolderEntry, who: Who, lock_timeout: float,
                   clock: Callable[[], float], created: str) -> List[Path]:
    store.make_parents(paths)
    store.make_folder(paths.folder, folder.mode, *_ids(folder.owner, folder.group))
    names = {file.name for file in folder.files}
    written = []
    with store.editing(paths, who, lock_timeout, clock) as transaction:
        before = transaction.state
        for file in sorted(folder.files, key=lambda f: f.name == paths.history.name):
            target = paths.folder / file.name
            store.replace_file(paths, target, file.data, store.Ownership(file.mode, *_ids(file.owner, file.group)))
            written.append(target)
        _remove_unexported(paths, names)
        after = store.read_state(paths)
        for problem in after.problems:
            # Imported as exported, hand edits and all; the provider skips these, and says so too.
            log.warning("%s (imported as the export holds it; the provider does not publish it)", problem)
        plan = store.plan_set(before.tags, after.tags)
        record = transaction.record_for("import", plan, after.sha256, {"exported": created})
        record["previous_tags"] = before.sorted_tags
        record.pop("migrated_from", None)
        if after.exists and not after.legacy and after.info is not None:
            record["file"] = store.fingerprint(after.info)
        try:
            history.append(paths.history, [record], *transaction.history_ownership())
        except OSError as error:
            raise store.os_failure(error, paths.history, "the files were imported, but the import is not recorded")
    return written


def _remove_unexported(paths: store.TagPaths, names: Set[str]) -> None:
    """A tag file the export does not have would hide what it has from the provider."""
    for path in (paths.tags, paths.legacy):
        if path.name not in names and os.path.lexists(path):
            os.unlink(path)


def _ids(owner: Optional[str], group: Optional[str]) -> Tuple[int, int]:
    """(uid, gid) by name: the owner only where we are root, the group where it exists."""
    import grp
    import pwd

    uid = gid = -1
    if owner is not None and os.geteuid() == 0:
        try:
            uid = pwd.getpwnam(owner).pw_uid
        except KeyError:
            log.warning("no account %r here: its files stay ours", owner)
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            log.warning("no group %r here: its files keep ours", group)
    return uid, gid


def _folder(entry: Any, source: str, number: int) -> FolderEntry:
    where = f"folder {number}"
    if not isinstance(entry, dict):
        raise InputError(source, None, f"{where} is not an object")
    vo = _text_field(entry, "vo", source, where)
    problem = vo_name_problem(vo)
    subcluster = entry.get("subcluster")
    if problem is None and subcluster is not None:
        subcluster = _text_field(entry, "subcluster", source, where)
        problem = subcluster_id_problem(subcluster)
    if problem is not None:
        raise InputError(source, None, f"{where}: {problem}")
    files = entry.get("files")
    if not isinstance(files, list):
        raise InputError(source, None, f"{where}: \"files\" is not a list")
    checked = tuple(_file(item, vo, source, f"{where} ({vo}), file {n}") for n, item in enumerate(files, 1))
    mode = _mode(entry, source, where) & _FOLDER_MODE_BITS
    return FolderEntry(vo, subcluster, mode, _name(entry, "owner", source, where), _name(entry, "group", source, where),
                       checked)


def _file(item: Any, vo: str, source: str, where: str) -> FileEntry:
    if not isinstance(item, dict):
        raise InputError(source, None, f"{where} is not an object")
    name = _text_field(item, "name", source, where)
    if not is_kept(vo, name):
        raise InputError(source, None, f"{where}: {name!r} is not a file gip keeps for VO {vo}")
    mode = _mode(item, source, where) & _FILE_MODE_BITS
    return FileEntry(name, mode, _name(item, "owner", source, where), _name(item, "group", source, where),
                     _content(item, source, where))


def _content(item: Dict[str, Any], source: str, where: str) -> bytes:
    if isinstance(item.get("text"), str):
        try:
            return str(item["text"]).encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate that no byte stands for ("\ud800")
            raise InputError(source, None, f"{where}: \"text\" is not text that a file can hold") from None
    if isinstance(item.get("base64"), str):
        try:
            return base64.b64decode(str(item["base64"]), validate=True)
        except (binascii.Error, ValueError):
            raise InputError(source, None, f"{where}: \"base64\" is not base64") from None
    raise InputError(source, None, f"{where}: no \"text\" or \"base64\"")


def _text_field(entry: Dict[str, Any], key: str, source: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise InputError(source, None, f"{where}: {key!r} is not a string")
    return value


def _name(entry: Dict[str, Any], key: str, source: str, where: str) -> Optional[str]:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\$?", value):
        raise InputError(source, None, f"{where}: {key} {value!r} is not an account or group name")
    return value


def _mode(entry: Dict[str, Any], source: str, where: str) -> int:
    value = entry.get("mode")
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3,4}", value):
        raise InputError(source, None, f"{where}: mode {value!r} is not an octal mode such as \"0644\"")
    return int(value, 8)


def _refuse_duplicates(folders: Tuple[FolderEntry, ...], source: str) -> None:
    seen = set()
    for folder in folders:
        key = (folder.vo, folder.subcluster)
        if key in seen:
            raise InputError(source, None, f"VO {folder.vo} (SubCluster {folder.subcluster}) appears twice")
        seen.add(key)
        names = [f.name for f in folder.files]
        if len(set(names)) != len(names):
            raise InputError(source, None, f"VO {folder.vo} (SubCluster {folder.subcluster}) names a file twice")
