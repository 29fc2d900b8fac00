"""``nogil-toolkit run`` puts this folder first on ``PYTHONPATH``, so every Python process the
command starts runs this at start-up: start the guard, then run the ``sitecustomize`` this
one hides (the environment's own, if it has one), and leave ``sys.path`` as it would be."""

import os
import sys

import _nogil_toolkit_guard  # noqa: F401  (starts the guard when NOGIL_MODE is set)


def _run_hidden_sitecustomize():
    import importlib.machinery

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None:
        return
    import importlib.util

    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_run_hidden_sitecustomize()
