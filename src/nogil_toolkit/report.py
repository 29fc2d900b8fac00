"""The environment check's outputs: a report for people, a versioned JSON document, and for CI
GitHub workflow commands and a SARIF log.

The text report names the blamed modules first, grouped by distribution, and ends with what
to do. The JSON document follows ``check_env.schema.json`` (shipped with the package; bump
``SCHEMA_VERSION`` on any incompatible change). The CI formats carry one finding per module
that needs attention, at the module's file.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Optional, TextIO

from nogil_toolkit import __version__
from nogil_toolkit.check import CheckResult, ExitCode, ModuleResult, Severity, Status
from nogil_toolkit.inspect import Verdict
from nogil_toolkit.check_env import ScanStats
from nogil_toolkit.console import plural, printable, style
from nogil_toolkit.serialize import inspection_to_json
from nogil_toolkit.target import TargetInterpreter

if TYPE_CHECKING:
    from nogil_toolkit.sarif import Rule
    from nogil_toolkit.workflow_commands import Kind

SCHEMA_VERSION = 1
SCHEMA_RESOURCE = "check_env.schema.json"

# Sections of the text report, blamed modules first; headings for one module and for several.
_SECTIONS = (
    (Status.NEEDS_GIL, ("re-enables the GIL when imported", "re-enable the GIL when imported")),
    (Status.WRONG_ABI, ("cannot be loaded by this interpreter",) * 2),
    (Status.UNDECIDED, ("could not be decided statically",) * 2),
    (Status.ALLOWED, ("needs the GIL, accepted by the policy", "need the GIL, accepted by the policy")),
)
_GIL_TARGET_NEEDS_GIL = ("needs the GIL (on a free-threaded build, importing it would re-enable it)",
                         "need the GIL (on a free-threaded build, importing one would re-enable it)")
_LABELS = {Severity.ERROR: ("FAIL", "red"), Severity.WARNING: ("WARN", "yellow"), Severity.INFO: ("NOTE", "bold"),
           Severity.NONE: ("OK", "green")}


def load_schema() -> dict[str, Any]:
    from importlib import resources  # only tests and tools ask for the schema

    return json.loads(resources.files("nogil_toolkit").joinpath(SCHEMA_RESOURCE).read_text("utf-8"))


def to_json(result: CheckResult, target: TargetInterpreter, stats: ScanStats) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "nogil-check-env", "version": __version__},
        "target": target.to_json(),
        "mode": result.mode.value,
        "policy": {
            "source": result.policy_source,
            "allow": [{"pattern": r.pattern, "reason": r.reason} for r in result.allow],
        },
        "scan": {"folders": list(stats.folders), "files": stats.files, "seconds": round(stats.seconds, 4),
                 "cached": stats.cached, "probed": stats.probed, "probes_cached": stats.probes_cached},
        "result": {
            "exit_code": int(result.exit_code),
            "status": result.exit_code.name.lower(),
            "gil_stays_disabled": result.gil_stays_disabled if target.free_threaded else None,
        },
        "summary": {status.value: result.count(status) for status in Status},
        "modules": [_module_json(m) for m in result.modules],
    }


def _module_json(module: ModuleResult) -> dict[str, Any]:
    dist = module.file.distribution
    abi = module.file.abi
    return {
        "module": module.file.module,
        "path": module.file.path,
        "distribution": {"name": dist.name, "version": dist.version} if dist else None,
        "status": module.status.value,
        "severity": module.severity.value,
        "inspection": inspection_to_json(module.inspection) if module.inspection else None,
        "abi": {"suffix": abi.suffix, "built_for": abi.built_for, "status": abi.status.value, "reason": abi.reason},
        "shadowed_by": module.file.shadowed_by,
        "allowed_because": module.allowed_because.reason if module.allowed_because else None,
        "decided_by": _decided_by(module),
        "probe": None if module.probe is None else {
            "gil_enabled": module.probe.gil_enabled,
            "blamed": module.probe.blamed,
            "error": module.probe.error,
            "needs_gil": module.probe.needs_gil,
            "disagrees": module.probe_disagrees,
            "summary": module.probe.summary,
        },
    }


def _decided_by(module: ModuleResult) -> Optional[str]:
    """Which evidence set the module's status: ``"probe"``, ``"inspection"``, or None while
    undecided or when the content did not matter (wrong ABI, shadowed, not a module)."""
    if module.decided_by_probe:
        return "probe"
    if module.status in (Status.KEEPS_GIL_OFF, Status.NEEDS_GIL, Status.ALLOWED) and module.inspection is not None \
            and module.inspection.verdict.declaration is not None:
        return "inspection"
    return None


def write_text(result: CheckResult, target: TargetInterpreter, stats: ScanStats, stream: TextIO,
               verbose: bool = False) -> None:
    def out(line: str = "", head: Optional[tuple[str, str]] = None) -> None:
        """One line: ``head`` (a word of ours and its colour) styled, then ``line`` escaped."""
        print((style(*head, stream) if head else "") + printable(line), file=stream)

    out(f": {target.name} at {target.executable}", ("nogil-check-env", "bold"))
    policy = f", policy from {result.policy_source}" if result.policy_source else ""
    probes = ""
    if stats.probed or stats.probes_cached:
        probes = f", {plural(stats.probed, 'module')} probed, {stats.probes_cached} probe results from cache"
    out(f"mode {result.mode.value}{policy}; {plural(stats.files, 'extension file')} in "
        f"{plural(len(stats.folders), 'folder')}, {stats.seconds:.2f} s ({stats.cached} from cache{probes})")
    if not target.free_threaded:
        out("note: this interpreter has the GIL; declarations decide its fate only on a free-threaded build")

    for status, headings in _SECTIONS:
        members = [m for m in result.modules if m.status is status]
        if not members:
            continue
        label, colour = _LABELS[max((m.severity for m in members), key=_severity_rank)]
        out()
        if status is Status.NEEDS_GIL and not target.free_threaded:
            headings = _GIL_TARGET_NEEDS_GIL
        out(f"  {plural(len(members), 'module')} {headings[len(members) != 1]}:", (label, colour))
        _write_grouped(members, out)

    disagreements = [m for m in result.modules if m.probe_disagrees]
    if disagreements:
        out()
        out("  the import probe contradicts the static verdict for:", ("FAIL", "red"))
        for m in disagreements:
            out(f"    {m.name}: static {m.inspection.verdict.value if m.inspection else '?'}, "
                f"probe: {m.probe.summary if m.probe else '?'}")

    good = [m for m in result.modules if m.status is Status.KEEPS_GIL_OFF]
    dists = {m.file.distribution for m in good if m.file.distribution}
    unowned = sum(1 for m in good if not m.file.distribution)
    where = (f"({len(good) - unowned} in {plural(len(dists), 'distribution')}, {unowned} owned by none)" if unowned
             else f"in {plural(len(dists), 'distribution')}")
    probed = sum(1 for m in good if m.decided_by_probe)
    settled = f", {probed} of them settled by an import probe" if probed else ""
    out()
    declare = "declares it runs" if len(good) == 1 else "declare they run"
    out(f"    {plural(len(good), 'module')} {where} {declare} without the GIL{settled}"
        + ("" if verbose or not good else " (--verbose lists them)"), ("OK", "green"))
    if verbose and good:
        _write_grouped(good, out)
    helpers, shadowed = result.count(Status.NOT_A_MODULE), result.count(Status.SHADOWED)
    if helpers or shadowed:
        not_modules = "that is not a module" if helpers == 1 else "that are not modules"
        out(f"      also seen: {plural(helpers, 'shared library', 'shared libraries')} {not_modules}, "
            f"{plural(shadowed, 'shadowed file')}")
    out()
    _write_advice(result, target, out)


def _severity_rank(severity: Severity) -> int:
    return [Severity.NONE, Severity.INFO, Severity.WARNING, Severity.ERROR].index(severity)


def _write_grouped(members: list[ModuleResult], out: Any) -> None:
    by_dist: dict[str, list[ModuleResult]] = defaultdict(list)
    for m in members:
        by_dist[str(m.file.distribution) if m.file.distribution else "(owned by no distribution)"].append(m)
    for dist in sorted(by_dist, key=lambda d: (-len(by_dist[d]), d.lower())):
        out(f"  {dist}")
        for m in sorted(by_dist[dist], key=lambda m: m.name):
            out(f"    {m.name}  {_why(m)}")


def _why(module: ModuleResult) -> str:
    if module.status is Status.WRONG_ABI:
        return f"({module.file.abi.reason})"
    if module.status is Status.ALLOWED and module.allowed_because:
        return f"({module.allowed_because.reason})"
    parts = []
    inspection = module.inspection
    if module.decided_by_probe and module.probe is not None:
        static = f"static: {inspection.verdict.value}" if inspection is not None else "static: not read"
        return f"(import probe: {module.probe.summary}; {static})"
    if inspection is not None:
        parts.append(inspection.verdict.value)
        if inspection.reason and module.status is Status.UNDECIDED:
            parts.append(inspection.reason)
        elif inspection.evidence:
            parts.append(inspection.evidence[0].detail)
    if module.probe is not None:
        parts.append(f"probe: {module.probe.summary}")
    return "(" + "; ".join(parts) + ")" if parts else ""


def _write_advice(result: CheckResult, target: TargetInterpreter, out: Any) -> None:
    if result.count(Status.NEEDS_GIL):
        out("what to do: upgrade these distributions to releases that declare free-threading support (or ask "
            "their maintainers to); once a module is audited as thread-safe, accept it with "
            "--allow MODULE=REASON or [tool.nogil.check.allow] in pyproject.toml.")
    unprobed = [m for m in result.modules if m.status is Status.UNDECIDED and m.probe is None]
    if unprobed and target.free_threaded:
        out("what to do: settle undecided modules with --probe=undecided (imports each one alone in a fresh "
            "interpreter; conclusive answers are cached).")
    if result.count(Status.WRONG_ABI):
        out(f"what to do: reinstall distributions with wheels built for {target.name} "
            "(pip install --force-reinstall --no-cache-dir NAME).")
    out(_result_line(result, target))


def _result_line(result: CheckResult, target: TargetInterpreter) -> str:
    code = result.exit_code
    verdict = {ExitCode.OK: "passed", ExitCode.VIOLATED: "FAILED", ExitCode.UNDECIDED: "UNDECIDED"}[code]
    forecast = ""
    if target.free_threaded:
        stays: Optional[bool] = result.gil_stays_disabled
        forecast = {True: "; the GIL stays disabled whatever this environment imports",
                    False: "; importing a module listed above re-enables the GIL",
                    None: "; whether the GIL stays disabled is undecided"}[stays]
    return f"result: {verdict} (exit {int(code)}){forecast}"


# The CI formats: one finding per module that needs attention.
_ANNOTATED = tuple(status for status, _ in _SECTIONS)
_KINDS: dict[Severity, Kind] = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice",
                                Severity.NONE: "notice"}
_SARIF_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note", Severity.NONE: "none"}


def _headline(module: ModuleResult, target: TargetInterpreter) -> str:
    """``spine._core (spine 1.0) re-enables the GIL when imported (undeclared; ...)``."""
    heading = dict(_SECTIONS)[module.status][0]
    if module.status is Status.NEEDS_GIL and not target.free_threaded:
        heading = _GIL_TARGET_NEEDS_GIL[0]
    owner = f" ({module.file.distribution})" if module.file.distribution else ""
    return f"{module.name}{owner} {heading} {_why(module)}".rstrip()


def _disagreement(module: ModuleResult) -> str:
    static = module.inspection.verdict.value if module.inspection else "?"
    return f"the import probe contradicts the static verdict for {module.name}: static {static}, " \
           f"probe: {module.probe.summary if module.probe else '?'}"


def write_github(result: CheckResult, target: TargetInterpreter, stream: TextIO) -> None:
    """GitHub workflow commands: an ``::error``/``::warning``/``::notice`` per module that needs
    attention (its kind follows the mode's severity), then the result line as a notice."""
    from nogil_toolkit.workflow_commands import annotation, workspace_path

    for module in result.modules:
        if module.status in _ANNOTATED:
            print(annotation(_KINDS[module.severity], _headline(module, target), file=workspace_path(module.file.path),
                             title=f"nogil-check-env: {module.name} {module.status.value}"), file=stream)
        if module.probe_disagrees:
            print(annotation("error", _disagreement(module), file=workspace_path(module.file.path),
                             title=f"nogil-check-env: {module.name} probe disagrees"), file=stream)
    print(annotation("notice", f"mode {result.mode.value}, {target.name}: {_result_line(result, target)}",
                     title="nogil-check-env"), file=stream)


def sarif_rules() -> list[Rule]:
    """What each kind of finding means; the ids name the verdict behind a module's status."""
    from nogil_toolkit.sarif import Rule

    fix = "Upgrade the distribution to a release that declares free-threading support, or accept the " \
          "module once audited with --allow MODULE=REASON or [tool.nogil.check.allow]."
    return [
        Rule("undeclared", "The extension module declares nothing about the GIL: a free-threaded "
             "interpreter re-enables the GIL when it imports the module.", fix, "error"),
        Rule("declares-gil-used", "The extension module declares Py_MOD_GIL_USED: a free-threaded "
             "interpreter re-enables the GIL when it imports the module.", fix, "error"),
        Rule("probe-needs-gil", "Importing the module alone in a fresh free-threaded interpreter "
             "re-enabled the GIL (static reading could not decide).", fix, "error"),
        Rule("undecided", "Static reading could not decide what the module declares.",
             "Settle it with --probe=undecided (imports the module alone in a fresh interpreter).", "error"),
        Rule("wrong-abi", "The file is built for another interpreter: the target cannot load it.",
             "Reinstall the distribution with wheels built for the target interpreter.", "error"),
        Rule("probe-disagrees", "The import probe contradicts the module's static verdict.",
             "Report the module to nogil-toolkit: the static reading or the probe is wrong.", "error"),
    ]


def _rule_id(module: ModuleResult) -> str:
    if module.status is Status.WRONG_ABI:
        return "wrong-abi"
    if module.decided_by_probe:
        return "probe-needs-gil"
    verdict = module.inspection.verdict if module.inspection else Verdict.UNKNOWN
    return {Verdict.USED: "declares-gil-used", Verdict.UNDECLARED: "undeclared"}.get(verdict, "undecided")


def to_sarif(result: CheckResult, target: TargetInterpreter, stats: ScanStats) -> dict[str, Any]:
    """A SARIF 2.1.0 log: a result per module that needs attention, located at its file relative
    to the search-path folder it was found in (base ids ``SEARCHPATH1``, ``SEARCHPATH2``, ... in
    import order). A module the policy accepts is a suppressed result, with the reason."""
    from nogil_toolkit import sarif

    bases = {f"SEARCHPATH{i}": folder for i, folder in enumerate(stats.folders, 1)}
    results = []
    for module in result.modules:
        location = sarif.artifact_location(module.file.path, bases)
        if module.status in _ANNOTATED:
            extra: dict[str, Any] = {}
            if module.status is Status.ALLOWED and module.allowed_because is not None:
                extra["suppressions"] = [{"kind": "external", "justification": module.allowed_because.reason}]
            results.append(sarif.result(_rule_id(module), _SARIF_LEVELS[module.severity], _headline(module, target),
                                        location, **extra))
        if module.probe_disagrees:
            results.append(sarif.result("probe-disagrees", "error", _disagreement(module), location))
    return sarif.sarif_log(
        "nogil-check-env", sarif_rules(), results, bases=bases,
        invocations=[{"executionSuccessful": True, "exitCode": int(result.exit_code)}],
        properties={"mode": result.mode.value, "target": target.name})


def write_sarif(result: CheckResult, target: TargetInterpreter, stats: ScanStats, stream: TextIO) -> None:
    from nogil_toolkit import sarif

    sarif.write(to_sarif(result, target, stats), stream)
