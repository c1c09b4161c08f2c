"""Renders kept between runs, reused while everything they were made from is unchanged.

The BDII runs gip every few minutes, mostly with the same site-info.def and
the same templates. What Jinja2 makes from those alone is kept in a file and
read back by the next run, which then neither imports Jinja2 (a third of a
large site's run) nor renders: the entries ``merged --base templates`` renders
from site-info.def, and the pieces of the GLUE 2 ApplicationEnvironment entry
(see gip.publish). Tags are never kept: they are read and checked every run,
and set into the kept text where it says. The reading of large static LDIF
files is kept too, under a key that holds their bytes whole (see
gip.staticldif.start_reading_static_ldif).

A record is found by its slot (one file per kind of record and place, so the
folder does not grow) and used only where its key, stored beside it, equals
the run's own and its checksum still holds. The key holds everything the
kept text depends on: the format below, Python's version, gip's modules and
Jinja2's (by name, size and modification time), the templates' text, and the
values rendered. Anything else is a miss: a file that is missing, cut short,
unreadable, damaged or of another shape. A record that cannot be written is
not kept. Either way the run renders as it would without a cache: the cache
can cost time, never output.

Jinja2 keeps the templates it compiles in the same folder (see
gip.publish), keyed by their source.

The folder is ``$GIP_CACHE_DIR``, else ``gip-<uid>`` in ``$TMPDIR`` (else
``/tmp``); ``GIP_CACHE_DIR=`` (empty) turns the cache off, and nothing is
kept. Since a record becomes output, and compiled templates run, the folder
is used only where it is this user's and no one else may write to it; gip
makes it with mode 0700.
"""

from __future__ import annotations

import binascii
import marshal
import os
import stat
import sys
from pathlib import Path

from gip import log

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Iterable, Mapping, Optional, Tuple, Union

CACHE_VARIABLE = "GIP_CACHE_DIR"
# Changed whenever what a record holds changes shape.
FORMAT = 1


class RenderCache:
    """Records in one folder: ``get(slot, key)`` and ``put(slot, key, value)`` (marshal-able values)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._usable: Optional[bool] = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Optional["RenderCache"]:
        """The cache the environment asks for (see the module docstring), or None where it is turned off."""
        chosen = environ.get(CACHE_VARIABLE)
        if chosen is not None:
            return cls(Path(chosen)) if chosen else None
        temporary = environ.get("TMPDIR") or "/tmp"
        return cls(Path(temporary) / f"gip-{os.geteuid()}")

    def get(self, slot: str, key: Union[str, bytes]) -> Optional[object]:
        """The value kept in ``slot`` under ``key``; None where there is none to trust."""
        if not self.usable():
            return None
        key_data = _key_bytes(key)
        try:
            with open(self._path(slot), "rb") as stream:
                data = stream.read()
            head, rest = data.split(b"\n", 1)
            version, key_size, checksum = head.split(b" ")
            size = int(key_size)
            if int(version) != FORMAT or size != len(key_data) or rest[:size] != key_data:
                return None
            payload = memoryview(rest)[size:]
            if binascii.crc32(payload) != int(checksum, 16):
                return None
            value: object = marshal.loads(payload)
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return value

    def put(self, slot: str, key: Union[str, bytes], value: object) -> None:
        """Keeps ``value`` in ``slot`` under ``key``, in place of what the slot held; quietly not, on failure.

        The file is ``FORMAT key-size checksum`` on a line, the key, then the
        value (marshal); written beside and renamed into place, so a reader
        finds a whole record or none.
        """
        if not self.usable():
            return
        path = self._path(slot)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        try:
            payload = marshal.dumps(value)  # type: ignore[arg-type]
            key_data = _key_bytes(key)
            head = f"{FORMAT} {len(key_data)} {binascii.crc32(payload):08x}\n".encode("ascii")
            with open(partial, "xb") as stream:
                stream.write(head)
                stream.write(key_data)
                stream.write(payload)
            os.replace(partial, path)
        except (OSError, ValueError):
            try:
                os.unlink(partial)
            except OSError:
                pass

    def _path(self, slot: str) -> Path:
        return self.folder / f"{binascii.crc32(slot.encode('utf-8', 'surrogateescape')):08x}.record"

    def usable(self) -> bool:
        """True where the folder is (or now is) this user's and closed to other writers."""
        if self._usable is None:
            try:
                os.mkdir(self.folder, 0o700)
            except OSError:
                pass
            try:
                found = os.lstat(self.folder)
            except OSError:
                self._usable = False
            else:
                self._usable = (stat.S_ISDIR(found.st_mode) and found.st_uid == os.geteuid()
                                and not found.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
            if not self._usable:
                log.debug("renders are not kept: %s is not a folder of this user's that only it may write to",
                          self.folder)
        return self._usable


def _key_bytes(key: Union[str, bytes]) -> bytes:
    return key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")


def code_identity() -> Tuple[object, ...]:
    """What a render depends on besides its templates and values: the record format, Python,
    gip's modules and Jinja2's, each by name, size and modification time. Computed once per process."""
    global _CODE_IDENTITY
    if _CODE_IDENTITY is None:
        package = Path(__file__).resolve().parent
        jinja2_folder = _jinja2_folder()
        _CODE_IDENTITY = (
            FORMAT,
            sys.version,
            _files_identity(package, package.glob("*.py")),
            _files_identity(jinja2_folder, jinja2_folder.glob("*.py")) if jinja2_folder else None,
        )
    return _CODE_IDENTITY


_CODE_IDENTITY: Optional[Tuple[object, ...]] = None


def _jinja2_folder() -> Optional[Path]:
    """Jinja2's package folder, found as an import would find it, without importing it."""
    for entry in sys.path:
        folder = Path(entry or ".") / "jinja2"
        if (folder / "__init__.py").is_file():
            return folder.resolve()
    return None


def _files_identity(folder: Path, files: Iterable[Path]) -> Tuple[object, ...]:
    found = []
    for path in sorted(files):
        try:
            about = path.stat()
        except OSError:
            continue
        found.append((path.name, about.st_size, about.st_mtime_ns))
    return (str(folder), tuple(found))


def folder_texts(folder: Path) -> Tuple[Tuple[str, str], ...]:
    """Every template of a folder by name and text: what a render of that folder's templates may read."""
    texts = []
    for path in sorted(folder.glob("*.j2")):
        try:
            texts.append((path.name, path.read_text("utf-8", "surrogateescape")))
        except OSError:
            texts.append((path.name, ""))
    return tuple(texts)
