"""A pybind11 project as pybind11's docs write one: Pybind11Extension, pybind11's build_ext,
and ParallelCompile, which replaces distutils' CCompiler.compile with a threaded version."""

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

ParallelCompile("NPY_NUM_BUILD_JOBS", default=2).install()

setup(
    ext_modules=[Pybind11Extension("pbpar._core", ["src/pbpar/core.cpp", "src/pbpar/scale.cpp"], cxx_std=17)],
    cmdclass={"build_ext": build_ext},
)
