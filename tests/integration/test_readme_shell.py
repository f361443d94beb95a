"""The README's shell examples, run as written: one shell, one block after the other.

Each ```bash block of the README either runs here or is in `NOT_RUN` with the reason; a
new block that is neither fails the test. What a block needs that the README's prose
asks for (an input file, "with every worker of the app stopped") is set up first, by
`BEFORE`. Only what cannot be used on a shared machine is swapped: the ports (9092,
8081, 8082, 8083) for free ones and ``/tmp/`` for the test's directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from live import fraud_log

from streamcore.testing import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

NOT_RUN = {
    "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/streamcore demo": (
        "installs into .venv and runs the demo; the demo itself runs in tests/test_cli.py"
    ),
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest': (
        "the test command itself: .ci/run runs exactly it"
    ),
    "export STREAMCORE_HTTP_TOKEN=$(openssl rand -hex 16)": (
        "needs Docker and image pulls; tests/test_deploy.py checks the compose file"
    ),
    ".venv/bin/python -m chaos tck --random 1000 --seed 2   # 1028 passed, 0 failed (77 s here)": (
        "a minute and more; tests/test_conformance.py runs python -m chaos tck (the stored cases, random ones, "
        "an operator and an adapter of one's own)"
    ),
    ".venv/bin/python -m chaos list": (
        "the chaos suite, run from the repository: .ci/run runs its short profile after the tests, and "
        "tests/stress/test_chaos_suite.py runs list and run"
    ),
}
"""First line of a block -> why it does not run here."""

BEFORE = {
    "streamcore reset apps/payments/app.py --to earliest --dry-run": (
        "# the README: with every worker of the app stopped (the two of the Kafka block)\n"
        "for pid in $(jobs -p | tail -n +2); do kill $pid; wait $pid || true; done"
    ),
}
"""First line of a block -> shell lines run just before it."""

EXPECTED = [
    "every record accounted for",  # streamcore run app.py --until-end
    '"entity":"c4"',  # the Kafka block's curl, on both workers
    "3 dead letters replayed",
    "0 dead letters replayed; 3 skipped",
    "payments/0: ",  # reset: each partition's move
    "rows of 8 features of view 'card' written to features.csv",
    "one position: True",  # the MCP block: a plan through the stdio bridge
]


def _blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def _payments(path: Path) -> None:
    """The payments the README's examples read: good ones, and three that are not JSON (dead-lettered)."""
    good = [
        {"card": f"c{i % 5}", "amount": 1.5 * i, "ts": 1_764_670_000_000 + 700 * i, "status": "ok"} for i in range(40)
    ]
    lines = [orjson.dumps(p) for p in good] + [b"{broken", b"not json", b"[1,"]
    path.write_bytes(b"\n".join(lines) + b"\n")


def _script(tmp_path: Path) -> str:
    ports = {port: str(free_port()) for port in ("9092", "8081", "8082", "8083")}
    parts = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for block in _blocks():
        first = block.strip().splitlines()[0]
        if first in NOT_RUN:
            continue
        text = block.replace("/tmp/", f"{tmp_path}/")
        for port, free in ports.items():
            text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free}")
        parts += [BEFORE.get(first, ""), f"echo '### {first[:60]}'", text]
    return "\n".join(parts)


def test_every_shell_example_in_the_readme_runs_as_written(tmp_path: Path) -> None:
    blocks = _blocks()
    unknown = [b.splitlines()[0] for b in blocks if b.strip().splitlines()[0] not in NOT_RUN]
    assert len(unknown) >= 6, "the README's shell examples went missing"
    work = tmp_path / "work"
    work.mkdir()
    (work / "apps").symlink_to(ROOT / "apps")
    (work / ".venv").symlink_to(Path(sys.prefix))
    python_blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (work / "app.py").write_text(python_blocks[0])  # "streamcore run app.py": the README's app
    _payments(work / "payments.jsonl")
    fraud_log(work / ".streamcore", seed=2, cards=100, ticks=10, per_tick=20, tick_ms=500)  # backfill's input
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    ran = subprocess.run(
        ["bash", "-c", _script(tmp_path)], cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    out = ran.stdout + ran.stderr
    (tmp_path / "out.txt").write_text(f"rc {ran.returncode}\n{out}")
    assert ran.returncode == 0, out[-4000:]
    missing = [text for text in EXPECTED if text not in out]
    assert not missing, (missing, out[-4000:])
    assert out.count('{"entity":"c4","views":[{') == 2, out[-4000:]  # both workers answered
