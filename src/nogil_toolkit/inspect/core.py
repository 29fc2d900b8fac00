"""Entry points: open a file (or take bytes), pick the reader by magic, apply the rules.

The contract callers rely on is "never raises for what is in the file": an environment
scan meets empty files, truncated downloads, directories named ``*.so`` and unreadable
paths, and each of them must become an ``UNKNOWN`` verdict with a reason, not a traceback.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from typing import Callable, FrozenSet, List, Optional, Sequence, Tuple, Union

from nogil_toolkit.inspect import elf, macho, pe
from nogil_toolkit.inspect.exporthook import (FIRST_EXPORT_HOOK_VERSION, HOOK_PREFIXES, choose_hook, hooks_apply,
                                              read_hook_slot_array)
from nogil_toolkit.inspect.generators import PYBIND11_FIRST_MULTI_PHASE_INTERNALS, Fingerprint, Generator, fingerprint
from nogil_toolkit.inspect.image import BinaryImage, Buffer, MalformedBinary
from nogil_toolkit.inspect.initcode import (CodeSlotArray, ModuleFactoryCall, read_module_factory_call,
                                            read_pyinit_slot_array, refers_to)
from nogil_toolkit.inspect.rules import (MODULE_DEF_INIT, RULE_IMPORTS, SET_GIL, Observations, decide, own_arrays,
                                         passes_gil_used)
from nogil_toolkit.inspect.slots import (EmptySlotArray, ModuleDefinition, find_module_definitions, find_slot_arrays,
                                         has_stray_gil_entry, read_empty_slot_array)
from nogil_toolkit.inspect.verdict import ModuleInspection, Verdict
from nogil_toolkit.marker import Marker, iter_markers
from nogil_toolkit.regular_file import NotRegularFile, map_regular

_Loader = Callable[[Buffer], BinaryImage]
# (format name, recogniser of the first bytes, reader)
_FORMATS: Tuple[Tuple[str, Callable[[bytes], bool], _Loader], ...] = (
    ("elf", lambda head: head.startswith(elf.MAGIC), elf.load),
    ("pe", pe.is_pe, pe.load),
    ("macho", macho.is_macho, macho.load),
)
# What hostile input can make a reader raise despite its bound checks: its own verdict
# (MalformedBinary), a struct or index at the very end of a buffer, an offset too large for
# a C integer (OverflowError from mmap.find or a slice). Nothing else is caught: a reader bug
# (TypeError, AttributeError, NameError, a ValueError) must surface, not pass as a bad file.
_CONTENT_ERRORS = (MalformedBinary, struct.error, IndexError, OverflowError)


PythonVersion = Tuple[int, ...]


def inspect_binary(path: Union[str, "os.PathLike[str]"], module: Optional[str] = None,
                   python: Optional[PythonVersion] = None) -> ModuleInspection:
    """Statically decide what the shared library at ``path`` declares about the GIL.

    The file is memory-mapped and only the structures the rules need are read; it is never
    loaded. Problems with the file (missing, unreadable, not a binary, malformed) give an
    ``UNKNOWN`` verdict whose ``reason`` says what went wrong.

    ``module`` is the full dotted name the file is imported as (``pkg._speedups``), where the
    caller knows it: a toolkit marker then counts only if it names exactly that module.
    Without it, the file name gives the last part, and a marker counts if its last part matches.

    ``python`` is the (major, minor) of the CPython that will import the file: from 3.15 on an
    exported ``PyModExport_<name>`` hook (PEP 793) makes the file a module and wins over
    ``PyInit_<name>``; before, such a hook is ignored. ``None`` applies the newest rules.
    """
    name = os.fspath(path)
    try:
        # Opening a FIFO would block; devices and sockets are not binaries either (and opening
        # some devices has effects): only a regular file is opened, and never blocking.
        data = map_regular(name)
    except NotRegularFile as error:
        return _unknown(name, "is a directory" if stat.S_ISDIR(error.mode) else "not a regular file")
    except OSError as error:
        return _unknown(name, f"cannot read file: {error.strerror}")
    if not data:
        return _unknown(name, "empty file")
    with data:
        return _inspect(data, name, module, python)


def inspect_bytes(data: Union[bytes, bytearray, memoryview, mmap.mmap], name: str = "<bytes>",
                  module: Optional[str] = None, python: Optional[PythonVersion] = None) -> ModuleInspection:
    """Like :func:`inspect_binary` for a binary already in memory or mapped (e.g. a wheel member).

    ``name`` is used in the report and, like a file name, to tell which module a marker
    belongs to when ``module`` (the full dotted name) is not given; ``python`` as there.
    """
    if isinstance(data, memoryview):
        data = data.tobytes()
    if not data:
        return _unknown(name, "empty file")
    return _inspect(data, name, module, python)


def inspect_bytes_for(data: Union[bytes, bytearray, memoryview, mmap.mmap], name: str, module: Optional[str],
                      pythons: Sequence[Optional[PythonVersion]]) -> ModuleInspection:
    """:func:`inspect_bytes` for a file several CPython versions may import (a wheel tagged
    ``cp312-abi3`` reaches 3.12 to 3.15+). Versions on both sides of 3.15 see a file with an
    export hook differently; where their verdicts differ, the answer is ``UNKNOWN`` naming both.
    """
    if isinstance(data, memoryview):
        data = data.tobytes()
    first = inspect_bytes(data, name, module, pythons[0] if pythons else None)
    # Without the hook's name anywhere in the file, every version applies the same rules.
    if len(pythons) < 2 or data.find(b"PyModExport") < 0:
        return first
    others = [inspect_bytes(data, name, module, python) for python in pythons[1:]]
    if all(o.verdict is first.verdict for o in others):
        return first
    seen = "; ".join(f"CPython {_version_text(p)}: {i.verdict.value}" + (f" ({i.reason})" if i.reason else "")
                     for p, i in zip(pythons, [first, *others]))
    return first._replace(verdict=Verdict.UNKNOWN, reason="the CPython versions this file is built for see it "
                                                          f"differently (PEP 793 export hooks): {seen}")


def _version_text(python: Optional[PythonVersion]) -> str:
    if python is None:
        return "(any)"
    first = ".".join(map(str, FIRST_EXPORT_HOOK_VERSION))
    return f"{first}+" if tuple(python[:2]) >= FIRST_EXPORT_HOOK_VERSION else f"before {first}"


def image_reader(data: Buffer) -> Optional[Tuple[str, _Loader]]:
    """The format of the binary in ``data`` (``elf``, ``pe`` or ``macho``) and the reader that
    loads it; None for any other file."""
    head = bytes(data[:8])
    return next(((format_name, load) for format_name, recognises, load in _FORMATS if recognises(head)), None)


def _inspect(data: Buffer, name: str, module: Optional[str], python: Optional[PythonVersion]) -> ModuleInspection:
    reader = image_reader(data)
    if reader is None:
        return _unknown(name, "not an ELF, PE or Mach-O binary")
    format_name, load = reader
    try:
        image = load(data)
        init_symbols = tuple(sorted(image.symbols.exported_with(("PyInit_",))))
        hooks = image.symbols.exported_with(HOOK_PREFIXES)
        imports = image.symbols.imported_among(RULE_IMPORTS)
        hooks_called = hooks_apply(python)
        if hooks and hooks_called:
            hook_inspection = _judge_export_hook(image, name, module, init_symbols, hooks, imports)
            if hook_inspection is not None:
                return hook_inspection
        return _judge(image, name, module, init_symbols, imports,
                      ignored_hooks=() if hooks_called else tuple(sorted(hooks)))
    except _CONTENT_ERRORS as error:
        reason = str(error) if isinstance(error, MalformedBinary) else f"malformed binary ({error})"
        return _unknown(name, reason, format_name)


def _judge_export_hook(image: BinaryImage, name: str, module: Optional[str], init_symbols: Tuple[str, ...],
                       hooks: Tuple[str, ...], imports: FrozenSet[str]) -> Optional[ModuleInspection]:
    """The verdict from the export hook CPython 3.15+ calls for this file; ``None`` when it
    calls ``PyInit_*`` instead.

    ``Python/importdl.c`` (``_PyImport_GetModuleExportHooks``) looks up ``PyModExport_<name>``
    first and returns it without looking up ``PyInit_<name>``; CPython then builds the module
    from the hook's slots alone. So with a hook, ``PyInit_``'s evidence does not count.
    """
    module_name = module.rsplit(".", 1)[-1] if module else _module_name(name)
    hook = choose_hook(hooks, init_symbols, module_name)
    if hook is None:
        return None
    array = read_hook_slot_array(image, hook)
    facts = Observations(
        init_symbols=(hook,), module_name=module_name, qualified_name=module, imports=imports,
        markers=_markers(image), slot_arrays=(), relocations_available=image.relocation_reader is not None,
        format=image.format, fingerprint=fingerprint(image), export_hook=hook, hook_slot_array=array,
    )
    decision = decide(facts)
    fp = facts.fingerprint
    return ModuleInspection(
        path=name, format=image.format, machine=image.machine, init_symbols=(hook, *init_symbols),
        verdict=decision.verdict, evidence=tuple(decision.evidence), reason=decision.reason,
        generator=fp.generator.value if fp else ("nogil-toolkit" if facts.markers else None),
        generator_version=fp.version if fp else None,
    )


def _judge(image: BinaryImage, name: str, module: Optional[str], init_symbols: Tuple[str, ...],
           imports: FrozenSet[str], ignored_hooks: Tuple[str, ...]) -> ModuleInspection:
    module_name = module.rsplit(".", 1)[-1] if module else _module_name(name)
    slot_arrays = find_slot_arrays(image) if init_symbols else []
    fp = fingerprint(image) if init_symbols else None
    definitions: List[ModuleDefinition] = []
    slots_may_be_set = False
    code_slot_array: Union[CodeSlotArray, str, None] = None
    empty_slot_array: Union[EmptySlotArray, str, None] = None
    # The costlier look at the module's own definition, only when its slot array was not
    # found: a multi-phase module with m_slots NULL, an array holding only its terminator
    # (which the slot-array search does not take for one), or a run-time slot array.
    if (init_symbols and module_name and MODULE_DEF_INIT in imports
            and not own_arrays(slot_arrays, module_name)):
        definitions = find_module_definitions(image, module_name)
        if definitions and all(d.m_slots is None for d in definitions):
            slots_may_be_set = (has_stray_gil_entry(image, slot_arrays)
                                or any(refers_to(image, f"PyInit_{module_name}", d.m_slots_location,
                                                 image.pointer_size) for d in definitions))
        elif definitions and _is_pybind11_3(fp):
            code_slot_array = _code_slot_array(image, init_symbols, module_name, definitions)
        elif definitions:
            empty_slot_array = read_empty_slot_array(image, definitions)
            if isinstance(empty_slot_array, EmptySlotArray):
                slots_may_be_set = has_stray_gil_entry(image, slot_arrays)
    factory_call: Union[ModuleFactoryCall, str, None] = None
    if init_symbols and module_name and SET_GIL in imports and passes_gil_used(fp):
        factory_call = _module_factory_call(image, init_symbols, module_name)
    facts = Observations(
        init_symbols=init_symbols,
        module_name=module_name,
        qualified_name=module,
        imports=imports,
        markers=_markers(image),
        slot_arrays=slot_arrays,
        relocations_available=image.relocation_reader is not None,
        format=image.format,
        fingerprint=fp,
        module_definitions=definitions,
        slots_may_be_set_at_run_time=slots_may_be_set,
        code_slot_array=code_slot_array,
        empty_slot_array=empty_slot_array,
        module_factory_call=factory_call,
        ignored_hooks=ignored_hooks,
    )
    decision = decide(facts)
    fp = facts.fingerprint
    return ModuleInspection(
        path=name,
        format=image.format,
        machine=image.machine,
        init_symbols=init_symbols,
        verdict=decision.verdict,
        evidence=tuple(decision.evidence),
        reason=decision.reason,
        generator=fp.generator.value if fp else ("nogil-toolkit" if facts.markers else None),
        generator_version=fp.version if fp else None,
    )


def _is_pybind11_3(fp: Optional[Fingerprint]) -> bool:
    return (fp is not None and fp.generator is Generator.PYBIND11
            and (fp.major or 0) >= PYBIND11_FIRST_MULTI_PHASE_INTERNALS)


def _code_slot_array(image: BinaryImage, init_symbols: Tuple[str, ...], module_name: str,
                     definitions: List[ModuleDefinition]) -> Union[CodeSlotArray, str]:
    """pybind11 3's slot array as its ``PyInit`` fills it, or why it cannot be read."""
    arrays = {d.m_slots for d in definitions}
    if len(arrays) != 1 or None in arrays:
        return "the module's definitions point to different slot arrays"
    function = f"PyInit_{module_name}"
    if function not in init_symbols:
        return f"no {function} export"
    addresses = [a for d in definitions for a in d.possible_addresses]
    array = arrays.pop()
    assert array is not None
    return read_pyinit_slot_array(image, function, array, addresses)


def _module_factory_call(image: BinaryImage, init_symbols: Tuple[str, ...],
                         module_name: str) -> Union[ModuleFactoryCall, str]:
    """The constant ``gil_used`` PyO3's ``PyInit`` passes with the module's definition, or why not."""
    function = f"PyInit_{module_name}"
    if function not in init_symbols:
        return f"no {function} export"
    definitions = find_module_definitions(image, module_name)
    if not definitions:
        return f"no static PyModuleDef named {module_name!r} was found"
    return read_module_factory_call(image, function, [a for d in definitions for a in d.possible_addresses])


def _markers(image: BinaryImage) -> List[Marker]:
    """The toolkit markers in the marker section, with offsets relative to the file."""
    if image.marker_region is None:
        return []
    start, size = image.marker_region
    if start < 0 or size < 0 or start + size > len(image.data):
        raise MalformedBinary("marker section beyond end of file")
    return [m._replace(offset=start + m.offset) for m in iter_markers(bytes(image.data[start:start + size]))]


def _module_name(name: str) -> Optional[str]:
    """``_speedups`` for ``pkg/_speedups.cpython-313t-x86_64-linux-gnu.so``."""
    base = os.path.basename(name.replace("\\", "/"))
    stem = base.split(".", 1)[0]
    return stem or None


def _unknown(name: str, reason: str, format: Optional[str] = None) -> ModuleInspection:
    return ModuleInspection(path=name, format=format, machine=None, init_symbols=(),
                            verdict=Verdict.UNKNOWN, evidence=(), reason=reason)
