"""nogil-toolkit: declare, build, inspect and enforce GIL-free extension modules.

Free-threaded CPython keeps the GIL off only while every extension module it imports has
declared, at module init, that it can run without it. This package turns a declaration in
``pyproject.toml`` into that module-init declaration, and checks binaries and environments
for it without importing them.
"""

__version__ = "0.1.0"
