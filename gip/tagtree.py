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

from gip.errors import UsageError
from gip.report import Problem
from gip.tags import subcluster_id_problem, vo_name_problem

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Collection, List, Mapping, NamedTuple, Optional, Set, Tuple, Union
else:
    from gip._records import NamedTuple

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
    # Folders are handled as the strings os.scandir gives, and a Path is made only for each tag
    # file found: building Paths is most of what a scan costs in Python.
    scan = TreeScan()
    top_entries = _listing(str(info_dir))
    if isinstance(top_entries, Problem):
        scan.problems.append(top_entries)
        return scan
    for top in _folders(top_entries):
        entries = _listing(top.path)
        names = None if isinstance(entries, Problem) else {entry.name for entry in entries}
        _add_source(scan, top.path, top.name, None, vos, names)
        if isinstance(entries, Problem):
            scan.problems.append(entries)
            continue
        for sub in _folders(entries):
            _add_source(scan, sub.path, sub.name, top.name, vos, None)
    return scan


def _listing(path: str) -> Union[List[os.DirEntry[str]], Problem]:
    """The entries of a folder whose names do not start with a dot, or why it cannot be listed."""
    try:
        with os.scandir(path) as entries:
            listed = [entry for entry in entries if not entry.name.startswith(".")]
            for entry in listed:
                entry.is_dir()  # may fail (a broken link, say), which fails the listing as a whole
    except FileNotFoundError:
        return Problem(str(Path(path)), None, "no such folder: no tags are read from it")
    except OSError as error:
        return Problem(str(Path(path)), None, f"cannot list: {error.strerror}")
    return listed


def _folders(entries: List[os.DirEntry[str]]) -> List[os.DirEntry[str]]:
    return sorted((entry for entry in entries if entry.is_dir()), key=lambda entry: entry.name)


def _add_source(
    scan: TreeScan,
    folder: str,
    vo: str,
    subcluster: Optional[str],
    vos: Optional[Collection[str]],
    names: Optional[Set[str]],
) -> None:
    """Adds the tag file that ``folder`` holds as VO ``vo``'s folder, or why it is skipped.

    ``names`` are the folder's entries when it was listed: a tag file missing from them is not
    looked for on disk.
    """
    path, unusable = _tag_file_in(folder, vo, names)
    if path is None and unusable is None:
        return
    shown = path or unusable
    problem = vo_name_problem(vo)
    if problem is None and subcluster is not None:
        problem = subcluster_id_problem(subcluster)
    if problem is not None:
        scan.problems.append(Problem(str(shown), None, f"skipped: {problem}"))
        return
    if vos is not None and vo not in vos:
        reason = f"skipped: VO {vo!r} is not in VOS of site-info.def"
        scan.problems.append(Problem(str(shown), None, reason))
        return
    if unusable is not None:
        instead = f"{path.name} beside it is read instead" if path else f"VO {vo}'s tags from it are not published"
        reason = f"not a file (a folder, a broken link, a device?): {instead}"
        scan.problems.append(Problem(str(unusable), None, reason))
    if path is not None:
        scan.sources.append(TagSource(vo, subcluster, path))


def _tag_file_in(folder: str, vo: str, names: Optional[Set[str]]) -> Tuple[Optional[Path], Optional[Path]]:
    """The VO's tag file in ``folder`` (the legacy name where the other is no file), and the first of
    the two names that is there but is no regular file. That one is never opened: a FIFO would
    block the run."""
    unusable = None
    for suffix in (TAG_SUFFIX, LEGACY_SUFFIX):
        name = vo + suffix
        if names is not None and name not in names:
            continue
        path = Path(folder, name)
        if path.is_file():
            return path, unusable
        if unusable is None and os.path.lexists(path):
            unusable = path
    return None, unusable
