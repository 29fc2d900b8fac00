"""meson sample: one multi-phase C module, one single-phase C module, one Cython module."""
