"""The tag folder: where each VO's tag files live, and finding them all.

Layout under the info folder (``$EDG_LOCATION_VAR/info``, DESIGN.md §2)::

    <vo>/<vo>.ldif                       global tags of <vo>: every SubCluster
    <SubClusterUniqueID>/<vo>/<vo>.ldif  tags of <vo> on that SubCluster only
    ... <vo>.list                        legacy name, read where no .ldif exists

Files gip itself keeps beside a tag file (lock, history, temporary files) start
with a dot, so nothing here ever reads them as tags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Collection, List, Mapping, NamedTuple, Optional

from gip.errors import UsageError
from gip.report import Problem
from gip.tags import subcluster_id_problem, vo_name_problem

DEFAULT_EDG_LOCATION_VAR = "/opt/edg/var"
TAG_SUFFIX = ".ldif"
LEGACY_SUFFIX = ".list"


def default_info_dir(environ: Mapping[str, str]) -> Path:
    """``$EDG_LOCATION_VAR/info``, with the historical default for EDG_LOCATION_VAR."""
    base = environ.get("EDG_LOCATION_VAR") or DEFAULT_EDG_LOCATION_VAR
    return Path(base) / "info"


def vo_folder(info_dir: Path, vo: str, subcluster: Optional[str] = None) -> Path:
    """The folder of one tag file; refuses names that could leave the info folder."""
    problem = vo_name_problem(vo)
    if problem is not None:
        raise UsageError(f"invalid VO name {vo!r}: {problem}")
    if subcluster is None:
        return info_dir / vo
    problem = subcluster_id_problem(subcluster)
    if problem is not None:
        raise UsageError(f"invalid SubCluster ID {subcluster!r}: {problem}")
    return info_dir / subcluster / vo


def tag_file_path(info_dir: Path, vo: str, subcluster: Optional[str] = None) -> Path:
    """``<vo>.ldif`` of VO ``vo``, global or of one SubCluster."""
    return vo_folder(info_dir, vo, subcluster) / (vo + TAG_SUFFIX)


def legacy_file_path(info_dir: Path, vo: str, subcluster: Optional[str] = None) -> Path:
    """``<vo>.list``, the legacy name of the same file."""
    return vo_folder(info_dir, vo, subcluster) / (vo + LEGACY_SUFFIX)


class TagSource(NamedTuple):
    """One tag file to read: a VO's global file, or its file for one SubCluster."""

    vo: str
    subcluster: Optional[str]
    path: Path

    @property
    def legacy(self) -> bool:
        return self.path.suffix == LEGACY_SUFFIX


class TreeScan:
    """What scan_info_dir found: the tag files to read, and what it skipped."""

    def __init__(self) -> None:
        self.sources: List[TagSource] = []
        self.problems: List[Problem] = []


def scan_info_dir(info_dir: Path, vos: Optional[Collection[str]] = None) -> TreeScan:
    """Every tag file under ``info_dir``, in a stable order; ``vos`` limits the VOs read."""
    scan = TreeScan()
    for entry in _folders(info_dir, scan):
        source = _source_in(Path(entry.path), entry.name, None, vos, scan)
        if source is not None:
            scan.sources.append(source)
        for sub in _folders(Path(entry.path), scan):
            source = _source_in(Path(sub.path), sub.name, entry.name, vos, scan)
            if source is not None:
                scan.sources.append(source)
    return scan


def _folders(path: Path, scan: TreeScan) -> List[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            folders = [e for e in entries if not e.name.startswith(".") and e.is_dir()]
    except FileNotFoundError:
        scan.problems.append(Problem(str(path), None, "no such folder: no tags are read from it"))
        return []
    except OSError as error:
        scan.problems.append(Problem(str(path), None, f"cannot list: {error.strerror}"))
        return []
    return sorted(folders, key=lambda e: e.name)


def _source_in(
    folder: Path, vo: str, subcluster: Optional[str], vos: Optional[Collection[str]], scan: TreeScan
) -> Optional[TagSource]:
    """The tag file that ``folder`` holds as VO ``vo``'s folder, or None."""
    path = _tag_file_in(folder, vo)
    if path is None:
        return None
    problem = vo_name_problem(vo)
    if problem is None and subcluster is not None:
        problem = subcluster_id_problem(subcluster)
    if problem is not None:
        scan.problems.append(Problem(str(path), None, f"skipped: {problem}"))
        return None
    if vos is not None and vo not in vos:
        reason = f"skipped: VO {vo!r} is not in VOS of site-info.def"
        scan.problems.append(Problem(str(path), None, reason))
        return None
    return TagSource(vo, subcluster, path)


def _tag_file_in(folder: Path, vo: str) -> Optional[Path]:
    for suffix in (TAG_SUFFIX, LEGACY_SUFFIX):
        path = folder / (vo + suffix)
        if path.is_file():
            return path
    return None
