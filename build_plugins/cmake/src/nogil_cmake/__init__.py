"""CMake integration of nogil-toolkit: ``NogilToolkit.cmake`` in :mod:`nogil_cmake.cmake`.

Nothing here runs at build time in Python: scikit-build-core finds the module folder through
this distribution's ``cmake.module`` entry point, and the CMake functions call
``python -m nogil_toolkit shim`` for the shim and flags.
"""
