"""The source audit of each extension module declared ``not-used``, from meson's own record
of the build.

meson-python builds in one call (configure, compile, pack), so the audit reads the build
directory once that call returns: ``meson-info/intro-targets.json`` lists each target's
sources and include path exactly as meson resolved them (whatever ``subdir()``, variables
and options made of ``meson.build``), and ``intro-install_plan.json`` says where each module
is installed, hence its dotted name. Cython sources appear there only as the C that meson
generates from them; the depfile Cython writes beside that C (``cython -M``) names the
``.pyx`` and every ``.pxd``/``.pxi`` it read, and those are audited instead.

The audit runs after the compile, not before: meson-python offers no public step in between,
and auditing takes milliseconds either way. In ``error`` mode the finished wheel is removed
before the build fails, so no wheel of a failed build is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator, List, Optional

import mesonpy

from nogil_toolkit.audit.build import ModuleAudit, audit_module, failure_message, print_audit
from nogil_toolkit.audit.sources import CYTHON_SUFFIXES
from nogil_toolkit.config import ConfigError, NogilConfig

_INSTALL_ROOTS = ("{py_platlib}/", "{py_purelib}/")


class AuditFailed(Exception):
    """``build = "error"`` and findings: ``what`` and ``where`` of the one error line."""

    def __init__(self, what: str, where: str) -> None:
        super().__init__(what)
        self.what, self.where = what, where


def build_wheel_with_audit(wheel_directory: str, config_settings: Optional[dict[str, Any]],
                           metadata_directory: Optional[str], config: Optional[NogilConfig]) -> str:
    """``mesonpy.build_wheel``, then the audit of the declared modules from its build directory.

    Without a ``build-dir`` setting meson-python builds in a temporary folder it deletes on
    return; here that folder is made (the same way, in the project) and kept until the audit
    has read it."""
    if config is None or config.audit.build == "off":
        return str(mesonpy.build_wheel(wheel_directory, config_settings, metadata_directory))
    settings = dict(config_settings or {})
    with contextlib.ExitStack() as stack:
        build_dir = settings.get("build-dir") or settings.get("builddir")
        if not build_dir:
            build_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix=".mesonpy-", dir=os.curdir))
            settings["build-dir"] = build_dir
        name = str(mesonpy.build_wheel(wheel_directory, settings, metadata_directory))
        try:
            audits = list(audit_build_dir(Path(build_dir), config))
            problem = failure_message(config, audits) if any(audit.failed for audit in audits) else None
        except ConfigError as exc:
            problem = (str(exc), str(config.path))
    if problem is not None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(Path(wheel_directory) / name)
        raise AuditFailed(*problem)
    return name


def audit_build_dir(build_dir: Path, config: NogilConfig) -> Iterator[ModuleAudit]:
    """Audit (and print) every extension module of the configured ``build_dir`` that the
    configuration declares ``not-used``."""
    build_dir = build_dir.resolve()
    info = build_dir / "meson-info"
    targets = json.loads((info / "intro-targets.json").read_text(encoding="utf-8"))
    plan = json.loads((info / "intro-install_plan.json").read_text(encoding="utf-8")).get("targets", {})
    root = config.path.parent.resolve()
    for target in targets:
        module = _module_name(target, plan) if target.get("type") == "shared module" else None
        if module is None:
            continue
        sources: List[Path] = []
        include_dirs: List[Path] = []
        for group in target.get("target_sources", []):
            sources += (Path(s) for s in group.get("sources") or [])
            for generated in group.get("generated_sources") or []:
                sources += _cython_inputs(build_dir / generated, build_dir)
            include_dirs += (build_dir / p[2:] for p in group.get("parameters") or [] if p.startswith("-I"))
        resolved = ((s, s.resolve()) for s in sources)
        sources = [s for s, real in resolved if real.is_relative_to(root) and not real.is_relative_to(build_dir)]
        audit = audit_module(config, module, sources, include_dirs)
        if audit is not None:
            print_audit(audit)
            yield audit


def _module_name(target: dict[str, Any], plan: dict[str, Any]) -> Optional[str]:
    """``pkg.mod`` from where the install plan puts the target's file (``{py_platlib}/pkg/mod.<suffix>``)."""
    for filename in target.get("filename") or []:
        destination = (plan.get(filename) or {}).get("destination", "")
        for prefix in _INSTALL_ROOTS:
            if destination.startswith(prefix):
                *package, name = destination[len(prefix):].split("/")
                return ".".join([*package, name.split(".", 1)[0]])
    return None


_DEPFILE_SEPARATOR = re.compile(r"(?<!\\)\s+")


def _cython_inputs(generated: Path, build_dir: Path) -> List[Path]:
    """The Cython files a generated C file came from, read from Cython's depfile beside it."""
    try:
        text = generated.with_name(generated.name + ".dep").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    _, _, inputs = text.replace("\\\n", " ").partition(": ")
    paths = (p.replace("\\ ", " ") for p in _DEPFILE_SEPARATOR.split(inputs.strip()) if p)
    return [(build_dir / p).resolve() for p in paths if p.lower().endswith(CYTHON_SUFFIXES)]
