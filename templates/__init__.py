"""Files the toolkit ships for users and build plugins: the module-init C shim, the meson
snippet and pyproject examples. Installed as ``nogil_toolkit.templates``; read them with
``importlib.resources.files("nogil_toolkit.templates")``."""
