"""The ``serialize`` mode's lock: every call into an undeclared extension module runs under one
process-wide re-entrant lock, and the rest of the program runs in parallel.

Why this way. The GIL protected an old extension only because no other thread ran while its C
code did; holding one lock around each call into such a module gives it the same exclusion
among its own entry points, while threads that are not inside it run in parallel. One lock for
all undeclared modules, not one per module: undeclared extensions may share C state (a library
two of them link to, or each other's C API), and one lock cannot deadlock against another.
Re-entrant, because the extension may call back into Python (a callback, a ``__hash__``, an
import) and that Python code may call the extension again on the same thread.

What is wrapped, after the module has been executed (its attributes are final then):

- its functions: its ``builtin_function_or_method`` attributes and Cython's
  ``cython_function_or_method`` ones become Python functions with the same name, module and
  docstring (:func:`functools.wraps`) that call the original under the lock;
- the types it defines, when they are heap types that allow attributes to be set (C types made
  with ``PyType_FromSpec``, the Python classes of a Cython module): their C and Cython methods,
  class and static methods, dunder slots (setting ``__add__`` on a heap type points its C slot
  at the new function, so ``a + b`` is locked as well as ``a.__add__(b)``), and C attributes
  (getset and member descriptors, as properties).

What cannot be wrapped is named, once per module, in its coverage line
(:class:`~nogil_toolkit.guard.errors.SerializeCoverageWarning`): static types (Cython's
``cdef class`` among them) and immutable heap types (``setattr`` is refused), a C type's own
``__new__`` (CPython refuses a replaced ``__new__`` that calls the C one: "X.__new__(X) is not
safe"), the buffer protocol (the memory is used after the call returns), capsules (other
extensions call that C API directly), methods bound to C objects and callable objects of
other C types (a ``functools.partial`` of one of its functions, say).
"""

from __future__ import annotations

import _thread
from _weakrefset import WeakSet
from dataclasses import dataclass, field
from types import (BuiltinFunctionType, ClassMethodDescriptorType, FunctionType, GetSetDescriptorType,
                   MemberDescriptorType, MethodDescriptorType, ModuleType, WrapperDescriptorType)

from nogil_toolkit.console import plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Collection

EXTENSION_LOCK = _thread.RLock()
"""The one lock every call into a serialized module holds (exposed so that an application can
hold it around code that touches such a module's state from outside, for example a buffer)."""

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE
_IMMUTABLETYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE
_NEVER_WRAPPED = frozenset({"__dict__", "__weakref__", "__buffer__", "__release_buffer__"})
"""Type attributes that are CPython's own (``__dict__``, ``__weakref__``) or that cannot be
locked (the buffer protocol, named in the coverage line when the type defines it)."""
_PLAIN_DATA = (str, bytes, int, float, complex, bool, type(None), tuple, frozenset)
"""Module attribute values the extension cannot change behind Python's back: not named."""

_wrapped_types: WeakSet[type] = WeakSet()
_wrapped_lock = _thread.allocate_lock()


@dataclass
class Coverage:
    """What :func:`serialize_module` locked in one module, and what it could not."""

    module: str
    functions: int = 0
    types: int = 0
    not_covered: list[str] = field(default_factory=list)

    def message(self) -> str:
        """The module's coverage line, e.g. ``serialize: legacy._c: 5 functions and 2 types
        locked; not covered: static type legacy._c.Foo``."""
        missing = "; not covered: " + ", ".join(self.not_covered) if self.not_covered else "; all covered"
        locked = f"{plural(self.functions, 'function')} and {plural(self.types, 'type')}"
        return f"serialize: {self.module}: {locked} locked{missing}"


def serialize_module(module: ModuleType) -> Coverage:
    """Put every entry point of ``module`` that can be replaced under :data:`EXTENSION_LOCK`."""
    name = module.__name__
    coverage = Coverage(name)
    # __name__, __spec__, __loader__ ...: the import system's attributes, not the extension's.
    attributes = [(a, v) for a, v in vars(module).items() if not (a.startswith("__") and a.endswith("__"))]
    # In the module's order (the coverage line's order), each type once even if it has aliases.
    own_types = dict.fromkeys(v for _, v in attributes if isinstance(v, type) and _defined_by(v, name))
    for cls in own_types:
        locked, problems = _serialize_type(cls, name)
        coverage.types += locked
        coverage.not_covered.extend(problems)
    for attribute, value in attributes:
        if _is_c_function(value, module):
            setattr(module, attribute, _locked_function(value))
            coverage.functions += 1
        else:
            gap = _gap(value, own_types)
            if gap:
                coverage.not_covered.append(f"{gap} {name}.{attribute}")
    return coverage


def _is_c_function(value: Any, module: ModuleType) -> bool:
    """A function the extension implements in C: a builtin function that belongs to it (bound to
    the module, or to nothing, as Cython's internal ones are), or a Cython function (a C object
    with ``__code__``, whose type Cython shares between modules) whose module is this one."""
    if isinstance(value, BuiltinFunctionType):
        return value.__self__ is module or value.__self__ is None
    return _is_cython_function(value) and getattr(value, "__module__", None) == module.__name__


def _gap(value: Any, own_types: Collection[type]) -> str | None:
    """How to name a module attribute that is C code or C memory nothing locks, or None.

    Not named: data Python owns (its containers and scalars), Python functions and objects of
    heap types (Python classes, whose code is not the extension's, other modules' Cython
    functions, locked in their own module if it is undeclared), another module's functions,
    and objects of the extension's own types (locked with the type, or named as the type)."""
    kind = type(value)
    if isinstance(value, (type, ModuleType, FunctionType, dict, list, set, *_PLAIN_DATA)) or kind in own_types:
        return None
    if kind.__name__ == "PyCapsule":
        return "capsule"  # other extensions call its C API directly
    if _is_buffer(value):
        return "buffer"
    if kind.__flags__ & _HEAPTYPE:
        return None
    if isinstance(value, BuiltinFunctionType):
        return None if isinstance(value.__self__, ModuleType) else "bound method"
    return f"callable ({kind.__name__})" if callable(value) else None


def _defined_by(cls: type, module: str) -> bool:
    """Whether ``cls`` is the extension's own type, not one it re-exports. A C type's module
    comes from its ``tp_name``, which may be the full dotted name, the last part, or no dot at
    all (then a static type says ``builtins`` and a heap type has no ``__module__``)."""
    owner = getattr(cls, "__module__", None)
    if owner in (None, module, module.rpartition(".")[2]):
        return True
    import builtins

    return owner == "builtins" and getattr(builtins, cls.__name__, None) is not cls


def _serialize_type(cls: type, module: str) -> tuple[bool, list[str]]:
    """Lock the C entry points of ``cls``: (whether any were locked, what stays unlocked). A
    type with no C code of its own (an exception class made by ``PyErr_NewException``) is
    neither locked nor a gap."""
    owner = getattr(cls, "__module__", None)
    where = f"{module if owner in (None, 'builtins') else owner}.{cls.__qualname__}"
    if not cls.__flags__ & _HEAPTYPE:
        return False, [f"static type {where}"]
    if cls.__flags__ & _IMMUTABLETYPE:
        return False, [f"immutable type {where}"]
    # A C __new__ (tp_new) sits in the dictionary as a builtin; a Cython class's __new__ is a
    # Cython function and is locked like its other methods.
    problems = [f"{where}.__new__"] if isinstance(vars(cls).get("__new__"), BuiltinFunctionType) else []
    problems += [f"{where}.__buffer__"] if "__buffer__" in vars(cls) else []
    with _wrapped_lock:
        if cls in _wrapped_types:  # a second module object of the same extension
            return True, problems
        _wrapped_types.add(cls)
    locked = False
    for attribute, value in list(vars(cls).items()):
        if attribute in _NEVER_WRAPPED or attribute == "__new__" and isinstance(value, BuiltinFunctionType):
            continue
        if attribute == "__new__" and _is_cython_function(value):
            replacement: Any = staticmethod(_locked_function(value))  # CPython calls __new__ unbound
        else:
            replacement = _locked_attribute(value)
        if replacement is not None:
            try:
                setattr(cls, attribute, replacement)
            except (TypeError, AttributeError):  # a metaclass that refuses it: a gap, not a failed import
                problems.append(f"{where}.{attribute}")
                continue
            locked = True
    return locked, problems


def _locked_attribute(value: Any) -> Any:
    """The locked stand-in for one C entry of a type's dictionary, or None (not C code)."""
    if isinstance(value, BuiltinFunctionType):  # does not bind as a method: neither may its stand-in
        return staticmethod(_locked_function(value))
    if isinstance(value, (MethodDescriptorType, WrapperDescriptorType)) or _is_cython_function(value):
        return _locked_function(value)
    if isinstance(value, ClassMethodDescriptorType):
        return classmethod(_locked_function(_unbound_classmethod(value)))
    if isinstance(value, (staticmethod, classmethod)) and (isinstance(value.__func__, BuiltinFunctionType)
                                                          or _is_cython_function(value.__func__)):
        return type(value)(_locked_function(value.__func__))
    if isinstance(value, (GetSetDescriptorType, MemberDescriptorType)):
        return _locked_property(value)
    return None


def _is_cython_function(value: Any) -> bool:
    """A function implemented in C that looks like a Python one (it has ``__code__`` and binds
    as a method): Cython's ``cython_function_or_method`` and its fused variant."""
    return (callable(value) and not isinstance(value, (type, FunctionType, BuiltinFunctionType))
            and hasattr(value, "__code__"))


def _unbound_classmethod(descriptor: Any) -> Callable[..., Any]:
    """A C class method as a function of (cls, *args), which ``classmethod`` binds again."""

    def call(cls: type, *args: Any, **kwargs: Any) -> Any:
        return descriptor.__get__(None, cls)(*args, **kwargs)

    call.__name__ = call.__qualname__ = descriptor.__name__
    call.__doc__ = descriptor.__doc__
    return call


def _locked_function(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` under the lock. A Python function, so that in a type's dictionary it binds
    like the method descriptor or Cython function it replaces (builtins, which do not bind, are
    put there as static methods); :func:`functools.wraps` keeps its name, module and docstring,
    and ``__wrapped__`` leads to the original."""
    from functools import wraps

    # The bound methods, not ``with EXTENSION_LOCK``: on 3.13t (no specialising interpreter)
    # ``with`` looks up __enter__ and __exit__ at every call, about a third of the wrapper's cost.
    acquire, release = EXTENSION_LOCK.acquire, EXTENSION_LOCK.release

    @wraps(function)
    def locked(*args: Any, **kwargs: Any) -> Any:
        acquire()
        try:
            return function(*args, **kwargs)
        finally:
            release()

    return locked


def _locked_property(descriptor: Any) -> property:
    """A C attribute (getset or member descriptor) whose get, set and delete hold the lock."""
    lock = EXTENSION_LOCK

    def get(obj: Any) -> Any:
        with lock:
            return descriptor.__get__(obj, type(obj))

    def set_(obj: Any, value: Any) -> None:
        with lock:
            descriptor.__set__(obj, value)

    def delete(obj: Any) -> None:
        with lock:
            descriptor.__delete__(obj)

    return property(get, set_, delete, descriptor.__doc__)


def _is_buffer(value: Any) -> bool:
    from collections.abc import Buffer  # 3.12+; the guard needs 3.13

    return isinstance(value, Buffer)
