"""Reading the static LDIF files that the site's configuration tool wrote.

These are the files YAIM's glite-info-static made for the BDII's ``ldif/``
folder (``static-file-CE.ldif``, ``static-file-Cluster.ldif``): content
records in RFC 2849 LDIF, read with python-ldap's ``ldif`` parser, so folded
lines, base64 values, comments, ``version:`` and CRLF endings are all
understood. URL values (``attr:< file://...``) are never fetched.

The files YAIM writes use none of that: plain ``attr: value`` lines and DNs
without escapes. Such a file is read by a plain split that gives the same
entries as the parser (a test holds them equal) in a tenth of the time, and
without importing python-ldap; anything else goes to the parser.

Where bdii-update, which reads these files in the BDII, reads them otherwise
than RFC 2849, gip reads them as bdii-update does: a lone CR ends a line,
values written plainly come without the whitespace around them (it strips
them; a base64 value keeps what it encodes), and a ``dn:`` line starts an
entry even where no blank line ends the one before. Where the BDII loads the
files itself, StaticEntry.as_bdii_reads_it() also cuts an entry where
bdii-update finds a ``dn:`` inside a line.

Reading never fails on content. A record the parser refuses is a Problem at
its line and costs that record only: reading starts again after the next
blank line, which always ends a record. A value that is not UTF-8 is a Problem
and is left out of its entry. A file that cannot be read is a Problem and
costs the entries it would have held; the other files still count.
"""

from __future__ import annotations

import io
import marshal
import re
from bisect import bisect_right
from functools import cached_property
from operator import itemgetter

from gip import background, log
from gip.files import read_regular_file
from gip.ldifvalue import is_plain_block, plain_records
from gip.report import Problem

TYPE_CHECKING = False  # mypy takes it for true; gip-provider does without typing (see gip._records)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

    from gip.rendercache import RenderCache

    # (attribute, value as the parser gives it, line, the line as written once unfolded)
    _Pair = Tuple[str, Optional[bytes], int, str]

# What only the parser reads right, besides CR characters: continuation and
# comment lines, and base64 (::) and URL (:<) values. A line that starts with
# ' ' or '#' leaves '\n ' or '\n#' in the file's line marks (its colons,
# newlines, blanks and '#', a tenth of a YAIM file), as does a name holding
# one: only then is the file itself searched. Otherwise each line's marks start
# with its first colon, and a base64 line's with '::'. A regular expression
# anchored at every line start is ten times slower. A line 'version: 1' is an
# attribute inside a record; only the file's first is special.
_NOT_LINE_MARK = bytes(byte for byte in range(256) if byte not in b":\n #")
_NOT_COLON_OR_NEWLINE = bytes(byte for byte in range(256) if byte not in b":\n")
# DNs that are certainly valid as they are: attribute=value RDNs, no escapes,
# no multi-valued RDNs, no spaces. Any other DN goes to the parser.
# A line: as python-ldap reads 'attr: value' ('attr:value' keeps the value as
# it is; after ': ' leading blanks go).
_PAIR = re.compile(r"^([^:\n]*):(?: [^\S\n]*)?(.*)$", re.MULTILINE)
_INNER_DN = ("a 'dn:' line inside an entry, with no blank line before it: read as the start of another "
             "entry, as bdii-update reads it")
_PLAIN_DN = re.compile(r"[A-Za-z][A-Za-z0-9-]*=[A-Za-z0-9._:/@-]+(?:,[A-Za-z][A-Za-z0-9-]*=[A-Za-z0-9._:/@-]+)*")


class StaticEntry:
    """One entry of a static file: its DN, its attributes in file order, where it was read.

    Attribute names are matched ignoring case, as LDAP does; the spelling of
    an attribute's first occurrence is kept for printing. ``lines`` gives the
    line of each (attribute, value) pair; without it the pairs are taken to
    follow the dn line one a line, as in a file with no folded lines.

    An entry of an ASCII plain file keeps where its attribute lines are in
    the file's text, and splits them into pairs only when all of them are
    asked for: the model asks a few attributes of thousands of entries, which
    substring searches of the file's lower-cased text answer (_text_values).
    """

    __slots__ = ("dn", "path", "line", "_pairs_read", "_lines", "_text", "_start", "_end", "_index", "_names",
                 "_first", "_classes", "_cut", "ends_file_unterminated", "dn_line_plain", "_known")

    def __init__(
        self, dn: str, path: str, line: int, pairs: Sequence[Tuple[str, str]] = (),
        lines: Optional[Sequence[int]] = None, text: Optional["_PlainText"] = None, span: Tuple[int, int] = (0, 0),
    ) -> None:
        self.dn = dn
        self.path = path
        self.line = line
        self._pairs_read: Optional[List[Tuple[str, str]]] = None if text is not None else list(pairs)
        self._lines = lines
        # A plain entry: its attribute lines are text.text[start:end], after the newline ending its dn line.
        self._text = text
        self._start, self._end = span
        self._index: Optional[Dict[str, List[int]]] = None
        self._names: List[str] = []
        self._first: Optional[Dict[str, int]] = None
        self._classes: Optional[Set[str]] = None
        # The line where bdii-update cuts the entry (see inner_dn_line), found by the parser's reading.
        self._cut: Optional[int] = None
        # The entry is its file's last and the file ends without a line end.
        self.ends_file_unterminated = False
        # Its dn line is 'dn: ' and the DN, as bdii-update matches a plugin's changes to it.
        self.dn_line_plain = True
        # Answers of has_class() and first() found already (by a child process, see
        # start_reading_static_ldif): positions of classes and of attributes in the answers.
        self._known: Optional[Tuple[Dict[str, int], Dict[str, int], Tuple[Any, ...]]] = None

    @property
    def _pairs(self) -> List[Tuple[str, str]]:
        if self._pairs_read is None:
            body = self._text.text[self._start:self._end] if self._text is not None else ""
            self._pairs_read = _stripped(_PAIR.findall(body))
        return self._pairs_read

    def _text_values(self, attribute: str, first_only: bool = False) -> Optional[List[str]]:
        """The values of ``attribute`` found by substring search in a plain entry's text, else None.

        A line ``name: value`` follows a newline and its name runs to its
        first colon, so ``\nname:`` (lower-cased) finds exactly the lines of
        that attribute. The value is read as _PAIR reads it.
        """
        source = self._text
        if source is None:
            return None
        text, lowered, end = source.text, source.lowered, self._end
        key = _line_key(attribute)
        values = []
        start = lowered.find(key, self._start - 1, end)
        while start >= 0:
            begin = start + len(key)
            stop = text.find("\n", begin, end)
            stop = end if stop < 0 else stop
            values.append(text[begin:stop].strip())
            if first_only:
                break
            start = lowered.find(key, stop, end)
        return values

    def _text_has_class(self, lowered_class: str) -> Optional[bool]:
        """has_class() answered from a plain entry's text where two searches settle it, else None.

        ``objectClass: <class>`` as YAIM writes it says yes; no ``<class>``
        in the entry's lines at all says no.
        """
        source = self._text
        if source is None:
            return None
        if not source.holds(lowered_class):
            return False
        lowered, start, end = source.lowered, self._start, self._end
        if lowered.find("\nobjectclass: " + lowered_class + "\n", start - 1, end + 1) >= 0:
            return True
        if lowered.find(lowered_class, start, end) < 0:
            return False
        return None  # the value lines need reading

    def inner_dn_line(self) -> Optional[int]:
        """The first line of the entry, after its dn line, where bdii-update finds ``dn:`` once it has
        unfolded the text (in a name, as in ``ownerdn:``, in a value, a comment, or across a fold):
        it starts another entry there, and the BDII does not see the entry's text from there on.
        None where there is no such line."""
        source = self._text
        if source is None:
            cuts = [line for (name, value), line in zip(self._pairs, self._line_list())
                    if name.endswith("dn") or "dn:" in value]
            cuts += [self._cut] if self._cut is not None else []
            return min(cuts) if cuts else None
        if not source.inner_dn:  # each 'dn:' of the file starts an entry
            return None
        found = source.text.find("dn:", self._start, self._end)
        # The reading splits entries at every line that starts with 'dn:': this one is inside a line.
        return None if found < 0 else self.line + 1 + source.text.count("\n", self._start, found)

    def as_bdii_reads_it(self) -> "StaticEntry":
        """The entry as bdii-update reads it: its text up to the ``dn:`` that inner_dn_line() finds
        (the value before it on that line stays, as bdii-update keeps it), or itself where there is none."""
        cut = self.inner_dn_line()
        if cut is None:
            return self
        source = self._text
        if source is not None:
            end = source.text.find("dn:", self._start, self._end)
            return StaticEntry(self.dn, self.path, self.line, (), None, source, (self._start, end))
        pairs: List[Tuple[str, str]] = []
        lines: List[int] = []
        for (name, value), line in zip(self._pairs, self._line_list()):
            if line > cut or name.endswith("dn"):
                break
            if "dn:" in value:  # the text before 'dn:' is the value's, to bdii-update
                pairs.append((name, value[:value.index("dn:")].strip()))
                lines.append(line)
                break
            if line < cut:
                pairs.append((name, value))
                lines.append(line)
        return StaticEntry(self.dn, self.path, self.line, pairs, lines)

    def _line_list(self) -> List[int]:
        return list(self._lines) if self._lines is not None else [self.line + 1 + i for i in range(len(self._pairs))]

    def plain_source(self) -> Optional[Tuple[str, str, int, int]]:
        """For an entry of a plain file: the file's text, lower-cased text, and where the entry's
        attribute lines are in it (they follow a newline and end before one, or at the end); else None."""
        source = self._text
        if source is None:
            return None
        return source.text, source.lowered, self._start, self._end

    def prints_as_written(self) -> bool:
        """True for an entry of a plain file whose attribute lines print as the file has them
        (ldifvalue.is_plain_block); its file's entries are looked at all at once where they can be."""
        source = self._text
        if source is None:
            return False
        if source.prints_as_written():
            return True
        return is_plain_block(source.text[self._start:self._end])

    def _first_positions(self) -> Dict[str, int]:
        """Where each attribute (lower-cased) first is among the pairs; made on first use.

        Built in C (map, zip, dict): the model looks up a few attributes of
        thousands of entries, and a full index of each costs more than the rest.
        """
        if self._first is None:
            self._names = list(map(str.lower, map(itemgetter(0), self._pairs)))
            count = len(self._names)
            self._first = dict(zip(reversed(self._names), range(count - 1, -1, -1)))
        return self._first

    def _positions(self) -> Dict[str, List[int]]:
        """Every position of each attribute (lower-cased), for items() and line_of()."""
        if self._index is None:
            self._first_positions()
            index: Dict[str, List[int]] = {}
            for position, name in enumerate(self._names):
                index.setdefault(name, []).append(position)
            self._index = index
        return self._index

    def values(self, attribute: str) -> List[str]:
        """The values of ``attribute`` in file order; empty when the entry has none."""
        found = self._text_values(attribute)
        if found is not None:
            return found
        wanted = attribute.lower()
        position = self._first_positions().get(wanted)
        if position is None:
            return []
        if self._names.count(wanted) == 1:
            return [self._pairs[position][1]]
        if self._index is not None:
            return [self._pairs[i][1] for i in self._index[wanted]]
        pairs = self._pairs
        return [pairs[i][1] for i, name in enumerate(self._names) if name == wanted]

    def first(self, attribute: str) -> Optional[str]:
        known = self._known
        if known is not None:
            at = known[1].get(attribute)
            if at is not None and known[2][at] is not False:  # False: not asked of this entry
                return known[2][at]  # type: ignore[no-any-return]
        source = self._text
        if source is not None:
            # _text_values() for one value, unrolled: the model asks this of every entry.
            key = _line_key(attribute)
            start = source.lowered.find(key, self._start - 1, self._end)
            if start < 0:
                return None
            begin = start + len(key)
            stop = source.text.find("\n", begin, self._end)
            value = source.text[begin:self._end if stop < 0 else stop]
            return value.strip()
        position = self._first_positions().get(attribute.lower())
        return None if position is None else self._pairs[position][1]

    def has(self, attribute: str) -> bool:
        found = self._text_values(attribute, first_only=True)
        if found is not None:
            return bool(found)
        return attribute.lower() in self._first_positions()

    def has_class(self, object_class: str) -> bool:
        # Asked of every entry to sort them: cheaper than indexing all attributes.
        known = self._known
        if known is not None:
            at = known[0].get(object_class)
            if at is not None:
                return known[2][at]  # type: ignore[no-any-return]
        if self._classes is None:
            settled = self._text_has_class(object_class.lower())
            if settled is not None:
                return settled
            self._classes = {value.lower() for value in self.values("objectClass")}
        return object_class.lower() in self._classes

    def items(self) -> Iterator[Tuple[str, List[str]]]:
        """(attribute as first spelled, values) in file order."""
        pairs = self._pairs
        for positions in self._positions().values():
            yield pairs[positions[0]][0], [pairs[i][1] for i in positions]

    def line_of(self, attribute: str, index: int = 0) -> Optional[int]:
        positions = self._positions().get(attribute.lower(), [])
        if index >= len(positions):
            return None
        position = positions[index]
        return self.line + 1 + position if self._lines is None else self._lines[position]

    @property
    def origin(self) -> str:
        """``path:line`` of the entry's dn, for reports."""
        return f"{self.path}:{self.line}"

    def __repr__(self) -> str:
        return f"StaticEntry({self.dn!r}, {self.origin!r})"


class StaticLdif:
    """The entries of all static files in reading order, and what was skipped."""

    def __init__(self) -> None:
        self.entries: List[StaticEntry] = []
        self.problems: List[Problem] = []


def read_static_ldif(paths: Iterable[str]) -> StaticLdif:
    """Reads every file; one that cannot be read is a Problem, the others still count."""
    return _parsed(_read_files(paths))


if TYPE_CHECKING:
    # A file read: its path, and its bytes or the Problem that it could not be read.
    _Read = Tuple[str, Optional[bytes], Optional[Problem]]
# Files smaller than this together are parsed at once: a child process costs about a millisecond.
BACKGROUND_BYTES = 256 * 1024


def start_reading_static_ldif(paths: Iterable[str], printing: bool = False,
                              questions: Sequence[Tuple[str, Sequence[str]]] = (),
                              cache: Optional[RenderCache] = None) -> Callable[[], StaticLdif]:
    """read_static_ldif() begun now and finished by the returned function.

    The files are read at once. Where they are large and a second CPU is
    free, a child process (gip.background) parses them while the caller goes
    on, and sends back each plain file's index (_plain_index): where its
    entries are, which the caller rebuilds them from in a few milliseconds.
    The child also answers ``questions``, (class, attributes) pairs, for
    every entry: has_class() of each class, and first() of its attributes
    where the entry has the class: what the caller will ask of thousands of
    entries. ``printing``: the entries will be printed, so whether they
    print as written is looked at too, the child and the caller each taking
    half of every file (_halves). Any other file, and anything the child
    does not send, is the caller's to read: the result is
    read_static_ldif()'s.

    With a ``cache`` (gip.rendercache), the index and whether each file
    prints as written are kept between runs under a key that holds the
    files' bytes whole (_StaticRecord): while the files stay as they are, the
    child sends what it read back from the record, and no one parses them.
    """
    files = _read_files(paths)
    size = sum(len(data) for _, data, _ in files if data is not None)
    asked = tuple((name, tuple(attributes)) for name, attributes in questions)
    child = None
    if size >= BACKGROUND_BYTES and background.available():
        record = _StaticRecord(cache, files, printing, asked) if cache is not None else None
        child = background.in_background(lambda send: _in_child(files, printing, asked, send, record))
    if child is None:
        result = _parsed(files)
        return lambda: result
    log.debug("the static LDIF (%d bytes) is parsed in a child process while the tag files are read", size)
    # Where each answer is (see _answers); an attribute named with two classes is taken from the first.
    positions: Tuple[Dict[str, int], Dict[str, int]] = ({}, {})
    at = 0
    for name, attributes in asked:
        positions[0].setdefault(name, at)
        for at, attribute in enumerate(attributes, at + 1):
            positions[1].setdefault(attribute, at)
        at += 1

    def finish() -> StaticLdif:
        assert child is not None
        try:
            return _finished(files, child, positions, printing, record)
        finally:
            child.close()

    return finish


class _StaticRecord:
    """What the child sent of some static files, kept between runs (gip.rendercache): the index's
    bytes and whether each file prints as written (None: not a plain file, or not looked at).

    Its key is the files' paths and bytes, whole, with the questions, ``printing`` and gip's code
    (rendercache.code_identity): a record is only ever used for the very files it was made from.
    """

    def __init__(self, cache: RenderCache, files: Sequence[_Read], printing: bool,
                 asked: Tuple[Tuple[str, Tuple[str, ...]], ...]) -> None:
        self._cache = cache
        paths = [path for path, _, _ in files]
        self._slot = f"static {printing} {paths!r}"
        self._files = files
        self._about = (printing, asked, [(path, None if data is None else len(data)) for path, data, _ in files])

    def _key(self) -> bytes:
        from gip.rendercache import code_identity

        head = repr((code_identity(), self._about)).encode("utf-8", "surrogateescape")
        return b"\0".join([head, *(data for _, data, _ in self._files if data is not None)])

    def get(self) -> Optional[Tuple[bytes, List[Optional[bool]]]]:
        """The index's bytes and the files' prints-as-written, as kept for these files; None where none is."""
        value = self._cache.get(self._slot, self._key())
        if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bytes)
                and isinstance(value[1], list) and len(value[1]) == len(self._files)):
            return value
        return None

    def put(self, index: bytes, prints: List[Optional[bool]]) -> None:
        self._cache.put(self._slot, self._key(), (index, prints))


def _in_child(files: Sequence[_Read], printing: bool, questions: Tuple[Tuple[str, Tuple[str, ...]], ...],
              send: Callable[[bytes], None], record: Optional[_StaticRecord] = None) -> None:
    """The child's work: each file's index; then whether it came from the ``record`` (and if so,
    whether each file prints as written); then, where it did not and ``printing``, whether the
    second half of each plain file prints as written (None for the others)."""
    kept = record.get() if record is not None else None
    if kept is not None:
        send(kept[0])
        send(marshal.dumps((True, kept[1])))
        return
    parsed = [_plain_parse(read) for read in files]
    send(marshal.dumps([_plain_index(result, questions) if result is not None else None for result in parsed]))
    send(marshal.dumps((False, None)))
    if printing:
        send(marshal.dumps([_half_prints(result.entries, second=True) if result is not None else None
                            for result in parsed]))


def _finished(files: Sequence[_Read], child: background.Child, positions: Tuple[Dict[str, int], Dict[str, int]],
              printing: bool, record: Optional[_StaticRecord] = None) -> StaticLdif:
    """The entries as read_static_ldif() gives them, from what the child sends and what it does not."""
    index_data = child.answer()
    indexes = _loaded(index_data, len(files))
    result = StaticLdif()
    rebuilt: List[Optional[StaticLdif]] = []
    try:
        for (path, data, problem), index in zip(files, indexes or ()):
            if index is None or data is None:
                parsed = _parsed([(path, data, problem)])
                rebuilt.append(None)
            else:
                parsed = _rebuilt(path, data, index, positions)
                rebuilt.append(parsed)
            result.entries.extend(parsed.entries)
            result.problems.extend(parsed.problems)
    except (TypeError, ValueError):  # an index not of the child's making
        indexes = None
    if indexes is None:
        log.warning("the child process parsing the static LDIF failed; parsed here instead")
        return _parsed(files)
    kept, prints = _kept_prints(child.answer(), len(files))
    if kept:
        log.debug("the static LDIF is unchanged since its reading was kept: the child read that back")
    if printing and not kept:
        firsts = [_half_prints(plain.entries, second=False) if plain is not None else None for plain in rebuilt]
        seconds = _loaded(child.answer(), len(files)) or [None] * len(files)
        prints = []
        for plain, first, second in zip(rebuilt, firsts, seconds):
            whole = None
            if plain is not None and plain.entries:
                if first and second is None:
                    second = _half_prints(plain.entries, second=True)
                whole = bool(first and second)
            prints.append(whole)
    for plain, whole in zip(rebuilt, prints):
        if plain is not None and plain.entries and isinstance(whole, bool):
            plain.entries[0]._text._prints_as_written = whole  # type: ignore[union-attr]
    if record is not None and not kept and index_data is not None:
        record.put(index_data, prints)
    return result


def _kept_prints(answer: Optional[bytes], count: int) -> Tuple[bool, List[Optional[bool]]]:
    """The child's second answer: whether the index came from a record, and the files' prints-as-written it kept."""
    loaded = _loaded_value(answer)
    if isinstance(loaded, tuple) and len(loaded) == 2 and loaded[0] is True and isinstance(loaded[1], list):
        if len(loaded[1]) == count:
            return True, loaded[1]
    return False, [None] * count


def _halves(entries: Sequence[StaticEntry]) -> Tuple[int, int]:
    """Where the text of a plain file's entries is cut in two, at the end of a record, and how many
    records come before the cut: whether the entries print as written is the same question of each half."""
    before = len(entries) // 2
    return (entries[before - 1]._end if before else 0), before


def _half_prints(entries: Sequence[StaticEntry], second: bool) -> Optional[bool]:
    """Whether the entries of one half (see _halves) of a plain file print as written; None for no entries."""
    if not entries:
        return None
    source = entries[0]._text
    assert source is not None
    cut, before = _halves(entries)
    if second:
        return plain_records(source.text[cut:], source.lowered[cut:], source.records - before)
    return plain_records(source.text[:cut], source.lowered[:cut], before)


def _read_files(paths: Iterable[str]) -> List[_Read]:
    files: List[_Read] = []
    for path in paths:
        try:
            files.append((path, read_regular_file(path), None))
        except OSError as error:
            reason = f"cannot read: {error.strerror or error}; the entries it holds are not published"
            files.append((path, None, Problem(path, None, reason)))
    return files


def _parsed(files: Iterable[_Read]) -> StaticLdif:
    result = StaticLdif()
    for path, data, problem in files:
        if data is None:
            result.problems.append(problem)  # type: ignore[arg-type]
            continue
        parsed = parse_static_ldif(data, path)
        result.entries.extend(parsed.entries)
        result.problems.extend(parsed.problems)
    return result


if TYPE_CHECKING:
    # The index of a plain file (see _plain_index): whether it holds 'dn:' inside a record, its count
    # of records, its entries as (DN, line, start, end, dn line plain, answers), and its problems as
    # tuples.
    _Index = Tuple[bool, int, List[Tuple[str, int, int, int, bool, Tuple[Any, ...]]], List[Tuple[Any, ...]]]


def _plain_parse(read: _Read) -> Optional[StaticLdif]:
    """The file parsed, where parse_static_ldif() reads it as a plain ASCII file (every entry on one
    _PlainText); else None: the parent parses it (python-ldap's parser is never run twice)."""
    path, data, _ = read
    if data is None:
        return None
    parsed = parse_plain_ldif(_universal_newlines(data), path)
    if parsed is None or not parsed.entries:
        return None
    source = parsed.entries[0]._text
    if source is None or any(entry._text is not source for entry in parsed.entries):
        return None
    return parsed


def _plain_index(parsed: StaticLdif, questions: Tuple[Tuple[str, Tuple[str, ...]], ...]) -> _Index:
    """What the child sends of a plain file (see _plain_parse): where its entries are, and for each
    the answers to ``questions`` (see start_reading_static_ldif), False for an attribute not asked."""
    source = parsed.entries[0]._text
    assert source is not None
    entries = [
        (entry.dn, entry.line, entry._start, entry._end, entry.dn_line_plain, _answers(entry, questions))
        for entry in parsed.entries
    ]
    return source.inner_dn, source.records, entries, [tuple(problem) for problem in parsed.problems]


def _answers(entry: StaticEntry, questions: Tuple[Tuple[str, Tuple[str, ...]], ...]) -> Tuple[Any, ...]:
    answers: List[Any] = []
    for name, attributes in questions:
        has = entry.has_class(name)
        answers.append(has)
        answers += map(entry.first, attributes) if has else [False] * len(attributes)
    return tuple(answers)


def _loaded(answer: Optional[bytes], count: int) -> Optional[List[Any]]:
    """One of the child's answers (a list, an item a file), or None where it has none that fits."""
    loaded = _loaded_value(answer)
    return loaded if isinstance(loaded, list) and len(loaded) == count else None


def _loaded_value(answer: Optional[bytes]) -> Any:
    if answer is None:
        return None
    try:
        return marshal.loads(answer)
    except (EOFError, ValueError, TypeError):
        return None


def _rebuilt(path: str, data: bytes, index: _Index, positions: Tuple[Dict[str, int], Dict[str, int]]
             ) -> StaticLdif:
    """The entries of a plain file from its index, as parse_static_ldif() gives them, with the
    child's answers (``positions``: where each class and attribute is in them)."""
    classes, attributes = positions
    inner_dn, records, entries, problems = index
    data = _universal_newlines(data)
    source = _PlainText(data)
    source.inner_dn, source.records = inner_dn, records
    result = StaticLdif()
    for dn, line, start, end, dn_line_plain, answers in entries:
        entry = StaticEntry(dn, path, line, (), None, source, (start, end))
        entry.dn_line_plain = dn_line_plain
        entry._known = (classes, attributes, answers)
        result.entries.append(entry)
    if result.entries and not data.endswith(b"\n"):
        result.entries[-1].ends_file_unterminated = True
    result.problems = [Problem(*problem) for problem in problems]
    return result


def _universal_newlines(data: bytes) -> bytes:
    """bdii-update reads the files with Python's universal newlines: a lone CR ends a line too."""
    if b"\r" in data:
        return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def parse_static_ldif(data: bytes, path: str) -> StaticLdif:
    """Parses the content of one static file; ``path`` names it in entries and problems."""
    data = _universal_newlines(data)
    plain = parse_plain_ldif(data, path)
    parsed = plain if plain is not None else parse_with_python_ldap(data, path)
    if parsed.entries and not data.endswith(b"\n"):
        parsed.entries[-1].ends_file_unterminated = True
    return parsed


_LINE_KEYS: Dict[str, str] = {}


def _line_key(attribute: str) -> str:
    """What starts a line of ``attribute`` in a lower-cased plain text: ``\nname:``."""
    key = _LINE_KEYS.get(attribute)
    if key is None:
        key = _LINE_KEYS[attribute] = "\n" + attribute.lower() + ":"
    return key


class _PlainText:
    """The text of an ASCII plain file and its lower-cased copy (same positions).

    Each is made when first asked for: entries rebuilt from a child's index,
    whose questions the child answered, may never need them.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        # Whether some 'dn:' is not an entry's dn line (see StaticEntry.inner_dn_line); set once read.
        self.inner_dn = True
        # How many records it holds, once read; whether they all print as written, once asked.
        self.records = 0
        self._prints_as_written: Optional[bool] = None
        self._holds: Dict[str, bool] = {}

    @cached_property
    def text(self) -> str:
        return self._data.decode("ascii")

    @cached_property
    def lowered(self) -> str:
        return self.text.lower()

    def holds(self, lowered: str) -> bool:
        """Whether the lower-cased text holds ``lowered`` anywhere: a class that no entry of a file
        names is looked for once, not once an entry."""
        found = self._holds.get(lowered)
        if found is None:
            found = self._holds[lowered] = lowered in self.lowered
        return found

    def prints_as_written(self) -> bool:
        """True when every entry's attribute lines print as they are (ldifvalue.plain_records)."""
        if self._prints_as_written is None:
            self._prints_as_written = plain_records(self.text, self.lowered, self.records)
        return self._prints_as_written


def parse_plain_ldif(data: bytes, path: str) -> Optional[StaticLdif]:
    """The entries of a file of plain ``attr: value`` lines, or None when it needs the parser.

    Records end at blank lines. Every line must hold a colon: once all other
    bytes are gone, each line's last colon is the one followed by a newline,
    so the file's count of ':\n' is its count of lines with a colon.
    """
    if b"\r" in data or data.startswith((b" ", b"#", b"version:")):
        return None
    marks = data.translate(None, _NOT_LINE_MARK)
    odd_names = b"\n " in marks or b"\n#" in marks
    if odd_names and (b"\n " in data or b"\n#" in data):
        return None
    if b"<" in data and b":<" in data:
        return None  # a URL value, or ':<' somewhere else: the parser tells them apart
    if odd_names:
        base64 = b"::" in data  # a blank or '#' of a name may come before a line's first colon
    else:
        base64 = marks.startswith(b"::") or b"\n::" in marks
    if base64:
        return None
    if not data.isascii():
        return _parse_plain_chunks(data, path)
    source = _PlainText(data)
    dn_count = source.text.count("dn:")
    # Where the file holds no 'dn:' but those of its entries' dn lines, no record holds a dn line
    # within it: one look at the count after the reading shows it, instead of one per record.
    records = _plain_records(source, path, look_inside=False)
    if records is not None and dn_count != len(records[0].entries):
        records = _plain_records(source, path, look_inside=True)
    if records is None:
        return None
    result, lines_in_records = records
    with_colon = (marks.translate(None, b" #") + b"\n").count(b":\n")
    source.inner_dn = dn_count != len(result.entries)
    source.records = len(result.entries)
    return result if with_colon == lines_in_records else None


def _plain_records(source: _PlainText, path: str, look_inside: bool) -> Optional[Tuple[StaticLdif, int]]:
    """The entries of a plain file's records and the number of lines in them; None where a record's
    dn line needs the parser. ``look_inside``: a 'dn:' line within a record starts another entry."""
    result = StaticLdif()
    text = source.text
    size = len(text.rstrip("\n"))
    position, line, lines_in_records = 0, 1, 0
    while position < size:
        if text[position] == "\n":
            position, line = position + 1, line + 1
            continue
        end = text.find("\n\n", position, size)
        end = size if end < 0 else end
        dn_end = text.find("\n", position, end)
        dn_end = end if dn_end < 0 else dn_end
        if look_inside:
            inner = text.find("\ndn:", dn_end, end)
            if inner >= 0:
                # bdii-update starts an entry at every 'dn:': so does gip, and says so.
                result.problems.append(Problem(path, line + text.count("\n", position, inner) + 1, _INNER_DN))
                end = inner
        entry = _plain_entry(text[position:dn_end], path, line, source, (dn_end + 1, end))
        if entry is None:
            return None
        result.entries.append(entry)
        newlines = text.count("\n", position, end)
        lines_in_records += newlines + 1
        position, line = end + 1, line + newlines + 1
    return result, lines_in_records


def _parse_plain_chunks(data: bytes, path: str) -> Optional[StaticLdif]:
    """parse_plain_ldif() for a file with UTF-8 values: record by record, each split into pairs."""
    result = StaticLdif()
    line = 1
    for chunk in data.split(b"\n\n"):
        record = chunk.strip(b"\n")
        if record:
            start = line + len(chunk) - len(chunk.lstrip(b"\n"))
            if record.count(b"\n") + 1 != (record.translate(None, _NOT_COLON_OR_NEWLINE) + b"\n").count(b":\n"):
                return None  # a line without a colon
            if b"\ndn:" in record:
                return None  # the parser's reading splits it where bdii-update does
            try:
                first, _, body = record.decode("utf-8").partition("\n")
            except UnicodeDecodeError:
                return None
            entry = _plain_entry(first, path, start)
            if entry is None or not body:
                return None
            entry._pairs_read = _stripped(_PAIR.findall(body))
            result.entries.append(entry)
        line += chunk.count(b"\n") + 2
    return result


def _plain_entry(
    first: str, path: str, line: int, text: Optional[_PlainText] = None, span: Tuple[int, int] = (0, 0)
) -> Optional[StaticEntry]:
    """The entry of a record whose dn line is ``first``; None where the parser must have its say."""
    # An entry without attributes is not LDIF (RFC 2849); the parser says so only at times.
    if span[0] > span[1]:
        return None
    if first.startswith("dn: ") and _PLAIN_DN.fullmatch(first, 4):
        return StaticEntry(first[4:], path, line, (), None, text, span)  # the common spelling
    dn = _PAIR.fullmatch(first)
    if dn is None or dn.group(1) != "dn" or not _PLAIN_DN.fullmatch(dn.group(2)):
        return None
    entry = StaticEntry(dn.group(2), path, line, (), None, text, span)
    entry.dn_line_plain = False
    return entry


def parse_with_python_ldap(data: bytes, path: str) -> StaticLdif:
    """Parses any RFC 2849 content with python-ldap; a record it refuses costs that record."""
    result = StaticLdif()
    lines = _lines(data)
    start = 0
    while start < len(lines):
        start = _parse_from(lines, start, path, result)
    _mark_cuts(result.entries, lines)
    return result


def _mark_cuts(entries: Sequence[StaticEntry], lines: Sequence[bytes]) -> None:
    """Notes in each entry the first line after its dn line and before the next entry that holds
    'dn:' anywhere but at its start, comments and folded lines included (see inner_dn_line)."""
    cuts = [number for number, line in enumerate(lines, 1) if line.find(b"dn:") > 0]
    if not cuts:
        return
    following = [entry.line for entry in entries[1:]] + [len(lines) + 1]
    for entry, end in zip(entries, following):
        at = bisect_right(cuts, entry.line)
        if at < len(cuts) and cuts[at] < end:
            entry._cut = cuts[at]


def _lines(data: bytes) -> List[bytes]:
    """Lines with their endings, cut where the parser cuts them: at LF only."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return lines + [parts[-1]] if parts[-1] else lines


def _parse_from(lines: Sequence[bytes], start: int, path: str, result: StaticLdif) -> int:
    """Parses from line index ``start`` to the end or the first error; returns where to go on."""
    parser: Any = None
    try:
        parser = _parser(io.BytesIO(b"".join(lines[start:])), path, start, result)
        parser.parse_entry_records()
        return len(lines)
    except (ValueError, EOFError) as error:
        line = _error_line(parser, start, error)
        reason = f"not LDIF ({_parser_message(error)}); the entry there is skipped"
        result.problems.append(Problem(path, line, reason))
        return _next_record(lines, line)


def _error_line(parser: Any, start: int, error: Exception) -> int:
    if parser is None:
        return start + 1
    if isinstance(error, UnicodeDecodeError):
        # Raised while reading a line, before the parser counted it.
        return start + int(parser.line_counter) + 1
    return int(parser.current_line)


def _parser_message(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return "a line is not UTF-8"
    message = str(error)
    # python-ldap counts lines from where this pass started; ours are in the problem itself.
    if message.startswith("Line ") and ": " in message:
        message = message.split(": ", 1)[1]
    return message


def _next_record(lines: Sequence[bytes], line: int) -> int:
    """The index after the first blank line at or after (1-based) ``line``."""
    for index in range(max(line - 1, 0), len(lines)):
        if not lines[index].strip(b"\r\n"):
            return index + 1
    return len(lines)


def _parser(stream: io.BytesIO, path: str, offset: int, result: StaticLdif) -> Any:
    """python-ldap's parser, with the line of every attribute kept for reports.

    The parser reports no line numbers of its own, so the method that reads
    one attribute line is wrapped: ``_unfold_lines`` starts on the line the
    parser has just counted, which is the first line of the attribute.
    Imported here: most static files never need it.
    """
    import ldif

    class Parser(ldif.LDIFParser):  # type: ignore[misc]
        def __init__(self) -> None:
            self.pairs: List[_Pair] = []
            self.current_line = offset + 1
            self.unfolded = ""
            super().__init__(stream, process_url_schemes=[])

        def _unfold_lines(self) -> str:
            self.current_line = offset + self.line_counter
            self.unfolded = str(super()._unfold_lines())
            return self.unfolded

        def _next_key_and_value(self) -> Tuple[Optional[str], Optional[bytes]]:
            key, value = super()._next_key_and_value()
            if key is not None and key != "-":
                self.pairs.append((key, value, self.current_line, self.unfolded))
            return key, value

        def handle(self, dn: str, entry: object) -> None:
            parsed, problems = _entries_from_pairs(self.pairs, path)
            self.pairs = []
            result.problems.extend(problems)
            result.entries.extend(parsed)

    return Parser()


def _entries_from_pairs(pairs: List[_Pair], path: str) -> Tuple[List[StaticEntry], List[Problem]]:
    """The entries of one record: the first ``dn`` pair starts one (earlier pairs, ``version:``, are
    not part of it), and so does every later ``dn`` pair, where bdii-update would start one too."""
    starts = [i for i, (key, _, _, _) in enumerate(pairs) if key == "dn"]
    entries: List[StaticEntry] = []
    problems: List[Problem] = []
    for number, (start, end) in enumerate(zip(starts, starts[1:] + [len(pairs)])):
        _, raw_dn, dn_line, written = pairs[start]
        if number:
            problems.append(Problem(path, dn_line, _INNER_DN))
        dn, reason = _decoded(raw_dn)
        if reason is not None:
            problems.append(Problem(path, dn_line, f"DN {reason}; the entry is not published"))
            continue
        if number and not _is_dn(dn):
            problems.append(Problem(path, dn_line, "not a valid DN; the entry is not published", dn))
            continue
        if start + 1 == end:
            problems.append(Problem(path, dn_line, "an entry without attributes; it is not published", dn))
            continue
        entry = _entry(dn, pairs[start + 1:end], dn_line, path, problems)
        entry.dn_line_plain = written == "dn: " + dn
        entries.append(entry)
    return entries, problems


def _is_dn(text: str) -> bool:
    """The parser's own test of a record's DN, for the DNs of the entries it does not see start."""
    import ldap.dn

    return bool(ldap.dn.is_dn(text))


def _entry(dn: str, pairs: Sequence[_Pair], line: int, path: str, problems: List[Problem]) -> StaticEntry:
    kept: List[Tuple[str, str]] = []
    lines: List[int] = []
    for key, raw, at, written in pairs:
        base64 = written[len(key):len(key) + 2] == "::"
        value, reason = _decoded(raw)
        if reason is not None:
            problems.append(Problem(path, at, f"{key}: {reason}; the value is left out"))
            continue
        # bdii-update strips a value as written, then decodes base64: a decoded value keeps its spaces.
        kept.append((key, value if base64 else value.strip()))
        lines.append(at)
    return StaticEntry(dn, path, line, kept, lines)


def _stripped(pairs: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    return [(name, value.strip()) for name, value in pairs]


def _decoded(raw: Optional[bytes]) -> Tuple[str, Optional[str]]:
    if raw is None:
        return "", "a URL value, which gip does not fetch"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return "", "not UTF-8"
