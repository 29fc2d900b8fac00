"""CMake sample: a multi-phase C module, a single-phase C module, a pybind11 C++ module."""
