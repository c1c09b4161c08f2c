"""gip._records.NamedTuple makes the class that typing.NamedTuple makes."""

from __future__ import annotations

import copy
import pickle
import typing
from typing import Optional

import pytest

from gip._records import NamedTuple


# One class body, given each base in turn: the classes must come out the same.
RECORD = '''
class {name}(base):
    """A record."""

    path: str
    line: Optional[int]
    subject: str = ""
    LIMIT = 3

    def __str__(self) -> str:
        return f"{{self.path}}:{{self.line}}"

    @property
    def legacy(self) -> bool:
        return self.path.endswith(".list")
'''


def record_class(name: str, base: type) -> type:
    """The record class on ``base``, made at this module's top level (pickle finds it by name)."""
    namespace = {"base": base, "Optional": Optional, "__name__": __name__}
    exec(RECORD.format(name=name), namespace)
    return namespace[name]  # type: ignore[no-any-return]


ByTyping = record_class("ByTyping", typing.NamedTuple)  # type: ignore[arg-type]
ByGip = record_class("ByGip", NamedTuple)


def described(cls: type) -> list:
    record = cls("a.list", 3)
    again = pickle.loads(pickle.dumps(record))
    return [
        repr(record).replace(cls.__name__, "R"), str(record), record.legacy, record.LIMIT, record == ("a.list", 3, ""),
        hash(record) == hash(("a.list", 3, "")), cls._fields, cls._field_defaults, cls.__doc__, cls.__module__,
        cls.__qualname__ == cls.__name__, type(cls), cls.__bases__, cls.__slots__, hasattr(record, "__dict__"),
        repr(record._replace(line=4)).replace(cls.__name__, "R"), record._asdict(), cls._make("bcd") == tuple("bcd"),
        type(again) is cls and again == record, copy.copy(record) == record, list(cls.__annotations__),
        sorted(set(dir(cls)) - {"__orig_bases__"}),
    ]


def test_the_same_class():
    assert described(ByGip) == described(ByTyping)


@pytest.mark.parametrize("body, error", [
    ("a: int = 1\n    b: int\n", "Non-default namedtuple field b cannot follow default field a"),
    ("a: int\n    def _replace(self): pass\n", "Cannot overwrite NamedTuple attribute _replace"),
])
def test_the_same_errors(body, error):
    for base in (typing.NamedTuple, NamedTuple):
        with pytest.raises((TypeError, AttributeError), match=error):
            exec(f"class R(base):\n    {body}", {"base": base, "__name__": __name__})
