"""The command line driven as a user would, and checks shared by the embedded and Kafka tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson

from streamcore.testing import cli_command


def cli(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``streamcore ARGS``; `env` adds variables to this process's environment."""
    return subprocess.run(
        cli_command(*args),
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
        check=False,
    )


def check_dead_letter_tools(where: list[str], source: str, broken: str, dlq_topic: str | None = None) -> None:
    """List, show and replay the one ``decode`` dead letter (value `broken`, from topic `source`)
    through the CLI at `where` (``--log-dir DIR`` or ``--broker URL``): a replay is done once,
    skipped when asked again, repeated with ``--again``; a wrong offset or reason is an error.
    Without `dlq_topic` the commands must find the only dead-letter topic themselves."""
    dlq = [*where, *(["--topic", dlq_topic] if dlq_topic else [])]
    listed = cli("dlq", "list", "--reason", "decode", *dlq)
    assert listed.returncode == 0 and "decode" in listed.stdout, listed.stderr
    shown = cli("dlq", "show", "--reason", "decode", *dlq)
    doc = orjson.loads(shown.stdout.splitlines()[0])
    assert doc["value"] == broken and doc["source"]["topic"] == source
    offset = str(doc["dlq_offset"])

    replayed = cli("dlq", "replay", "--offset", offset, *dlq)
    assert replayed.returncode == 0 and "1 dead letters replayed" in replayed.stdout, replayed.stderr
    twice = cli("dlq", "replay", "--offset", offset, *dlq)
    assert twice.returncode == 0, twice.stderr
    assert "0 dead letters replayed; 1 skipped: replayed before" in twice.stdout
    forced = cli("dlq", "replay", "--offset", offset, "--again", *dlq)
    assert forced.returncode == 0 and "1 dead letters replayed" in forced.stdout, forced.stderr

    tail = cli("log", "tail", source, "--meta", *where)
    copies = [orjson.loads(line) for line in tail.stdout.splitlines() if "sc.replayed_from" in line]
    assert [c["value"] for c in copies] == [broken, broken]
    assert all(c["headers"]["sc.replayed_from"].endswith(f"@{offset}") for c in copies)

    wrong_offset = cli("dlq", "replay", "--offset", "999999", *dlq)
    assert wrong_offset.returncode == 2 and "no dead letter at offset [999999]" in wrong_offset.stderr
    wrong_reason = cli("dlq", "replay", "--reason", "nonsense", *dlq)
    assert wrong_reason.returncode == 2 and "invalid choice: 'nonsense'" in wrong_reason.stderr
