"""The wheel tools' library: read a wheel without extracting it, check its claims, annotate it, choose wheels.

One module per job, each importable on its own (nothing is imported here, so a command pays
only for what it uses): ``archive`` (what installers refuse, and members read within budgets),
``reading`` (``read_wheel``: members, tags, metadata and verdicts),
``record`` (the declaration record's format), ``verify`` (claims against binaries),
``annotate`` (add or refresh the record), ``select`` (the wheel pip would install) and
``output`` (text and JSON forms). The ``main_wheel_*`` modules are the command lines over them.
"""
