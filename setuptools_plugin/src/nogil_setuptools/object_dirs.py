"""One object folder per declared extension, safe under ``build_ext -j N``.

distutils compiles every extension's sources into ``build_temp`` by their source path, so two
extensions sharing ``common.c`` write the same ``common.o``. Each extension compiles it with
its own macros (its own ``-DPyInit_<name>=...`` rename from this plugin, and often macros of
the project's own, like psutil's), so the objects differ. Built one after the other, the
second compile simply replaces the first; built in parallel (``-j N``: setuptools runs
``build_extension`` in threads), one extension links the object the other compiled, or a
half-written one.

A declared extension therefore compiles into ``<build_temp>/nogil/<module name>``. The
folder is chosen per thread: ``build_temp`` is one attribute of one command object shared by
every thread, so assigning it would race as well. Undeclared extensions keep distutils'
layout exactly, so the plugin changes nothing for them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Iterator, Optional


class PerExtensionBuildTemp:
    """Mixin for ``build_ext``: ``build_temp`` as each thread sees it.

    A data descriptor on the class takes precedence over the instance attribute that
    distutils and projects read and assign, so every existing ``self.build_temp`` goes
    through here unchanged. The shared value stays where a plain attribute would be, in the
    instance's ``__dict__``: a command whose ``__setattr__`` writes there directly (Cython
    0.29's ``old_build_ext``, PyYAML's base) and one that assigns normally then agree.
    """

    @property
    def build_temp(self) -> Optional[str]:
        own = getattr(self._nogil_thread_state(), "build_temp", None)
        return own if own is not None else self.__dict__.get("build_temp")

    @build_temp.setter
    def build_temp(self, value: Optional[str]) -> None:
        self.__dict__["build_temp"] = value

    def _nogil_thread_state(self) -> threading.local:
        state = self.__dict__.get("_nogil_thread")
        if state is None:
            # setdefault is atomic: two threads asking first get one and the same object.
            state = self.__dict__.setdefault("_nogil_thread", threading.local())
        return state

    @contextlib.contextmanager
    def nogil_own_build_temp(self, ext: Any) -> Iterator[str]:
        """While building ``ext`` in this thread, ``build_temp`` is the extension's own folder."""
        state = self._nogil_thread_state()
        shared = self.__dict__.get("build_temp")
        assert shared is not None, "build_temp is set by finalize_options before any extension is built"
        state.build_temp = os.path.join(shared, "nogil", ext.name)
        try:
            yield state.build_temp
        finally:
            state.build_temp = None
