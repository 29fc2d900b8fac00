"""The folder scikit-build-core adds to ``CMAKE_MODULE_PATH`` (entry point ``cmake.module``)."""
