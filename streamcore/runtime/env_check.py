"""``STREAMCORE_*`` variables that no setting reads: a typo must not pass silently.

`RunSettings` reads ``STREAMCORE_<FIELD>``, `KafkaSettings` ``STREAMCORE_KAFKA_<FIELD>``;
`SWITCHES` are the other variables streamcore reads. ``STREAMCORE_TEST_*`` and
``STREAMCORE_TCK_*`` belong to the project's own test suite.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import fields

from streamcore.io.kafka_settings import KafkaSettings
from streamcore.runtime.settings import ENV_PREFIX, RunSettings

SWITCHES = {
    "PURE_PYTHON": "run on the pure-Python references instead of the compiled kernels",
    "REQUIRE_EXTENSIONS": "make the install fail when a compiled kernel does not build",
    "NO_EXTENSIONS": "install without building the compiled kernels",
    "GENERIC_AGGREGATIONS": "run built-in aggregations through the generic path (no generated code)",
    "LOG_LEVEL": "the log level of run and worker",
    "LOG_FORMAT": "text or json",
}
TEST_PREFIXES = ("TEST_", "TCK_")


def known_variables() -> set[str]:
    names = {ENV_PREFIX + f.name.upper() for f in fields(RunSettings)}
    names |= {f"{ENV_PREFIX}KAFKA_{f.name.upper()}" for f in fields(KafkaSettings)}
    names |= {ENV_PREFIX + name for name in SWITCHES}
    return names


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A warning for each ``STREAMCORE_*`` variable in `env` that nothing reads, with a guess."""
    known = known_variables()
    warnings = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        if name.removeprefix(ENV_PREFIX).startswith(TEST_PREFIXES):
            continue
        guess = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        warnings.append(f"unknown setting {name}{hint}: nothing reads it")
    return warnings
