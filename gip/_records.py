"""typing.NamedTuple for the record classes of the modules gip-provider loads, without importing typing.

The BDII runs gip-provider every few minutes on every CE. Importing the typing
module costs each run about 2 ms, and typing's NamedTuple takes twice as long
as collections.namedtuple to make a class: typing at run time was an eighth of
the example site's plugin run, for nothing, since gip's annotations are never
evaluated (``from __future__ import annotations``). So those modules import
typing only for mypy, under ``if TYPE_CHECKING:`` with a module-level
``TYPE_CHECKING = False``, which mypy takes for true; and their record classes
use this NamedTuple at run time, while mypy checks them as typing.NamedTuple:

    if TYPE_CHECKING:
        from typing import NamedTuple
    else:
        from gip._records import NamedTuple

A class derived from it is made as typing.NamedTuple makes it: a
collections.namedtuple of the annotated fields, the values given to them as
their defaults, and the rest of the class body (docstring, methods,
properties, constants) set on it. So it is the same class, with the same
``repr``, ``_replace``, ``_fields``, ``_field_defaults`` and pickling, and
``type(record)`` is ``type``; only its ``__annotations__`` keep the
annotations' text where typing makes ForwardRefs of them, and it has no
``__orig_bases__``. Generic records (typing's NamedTuple with Generic, Python
3.11) are not needed and not made.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Tuple

# What a record's class body may not define: the namedtuple's own (typing's list).
_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                         "_make", "_replace", "_asdict", "_source"})
# What the class body holds and the namedtuple keeps its own of.
_SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})


class _RecordType(type):
    """Makes each class derived from NamedTuple a namedtuple instead (not an instance of this type)."""

    def __new__(mcs, typename: str, bases: Tuple[type, ...], namespace: Dict[str, Any]) -> Any:
        if not bases:  # NamedTuple itself
            return super().__new__(mcs, typename, bases, namespace)
        if bases != (NamedTuple,):
            raise TypeError("can only inherit from NamedTuple alone")
        fields: Dict[str, Any] = namespace.get("__annotations__", {})
        default_names = []
        for name in fields:
            if name in namespace:
                default_names.append(name)
            elif default_names:
                raise TypeError(f"Non-default namedtuple field {name} cannot follow default field"
                                f"{'s' if len(default_names) > 1 else ''} {', '.join(default_names)}")
        defaults = [namespace[name] for name in default_names]
        module = namespace["__module__"]
        # mypy takes a namedtuple() call for a class definition, whose fields and defaults it wants literal.
        record = collections.namedtuple(typename, list(fields), defaults=defaults, module=module)  # type: ignore[misc]
        record.__annotations__ = record.__new__.__annotations__ = dict(fields)
        for key, value in namespace.items():
            if key in _PROHIBITED:
                raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
            if key not in _SPECIAL and key not in fields:
                setattr(record, key, value)
        return record


class NamedTuple(metaclass=_RecordType):
    """The base of a record class at run time: see the module's docstring."""
