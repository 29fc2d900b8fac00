"""Start nogil-toolkit's import guard when ``NOGIL_MODE`` is set (``nogil-toolkit guard --help``).

Imported at interpreter start-up by a ``.pth`` file that ``nogil-toolkit guard install`` put
next to it (and ``uninstall`` removes), or by the ``sitecustomize`` of ``nogil-toolkit run``.
With ``NOGIL_MODE`` unset it costs one environment lookup and imports nothing.
"""

import os
import sys

# Where the nogil_toolkit package is when this environment does not have it; the line is
# rewritten by 'nogil-toolkit guard install'.
TOOLKIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _start():
    try:
        try:
            import nogil_toolkit  # noqa: F401
        except ImportError:
            _load_package(TOOLKIT)
        from nogil_toolkit.guard.startup import start_from_environment

        start_from_environment()
    except Exception as exc:  # a start-up hook must never stop the interpreter
        sys.stderr.write(f"warning: nogil-toolkit guard: could not start ({type(exc).__name__}: {exc}); "
                         f"NOGIL_MODE={os.environ['NOGIL_MODE']} is not enforced\n")


def _load_package(folder):
    """Import nogil_toolkit from ``folder`` without putting that folder (and the other
    packages in it) on sys.path."""
    import importlib.util

    init = os.path.join(folder, "nogil_toolkit", "__init__.py")
    spec = importlib.util.spec_from_file_location("nogil_toolkit", init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    if spec is None or not os.path.isfile(init):
        raise ImportError(f"nogil_toolkit is neither installed here nor in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["nogil_toolkit"] = module
    spec.loader.exec_module(module)


if os.environ.get("NOGIL_MODE") and not sys.flags.ignore_environment:
    _start()
