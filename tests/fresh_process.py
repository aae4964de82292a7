"""Run a test script in a fresh Python process: for what one test's imports would hide from another
(torch kept out of an import, the trust list skops builds when it is first imported)."""

from __future__ import annotations

import subprocess
import sys


def run_fresh(script: str, timeout: int = 300) -> None:
    """Run `script` with this interpreter; it must exit 0 and print only 'ok' (its stderr is the failure)."""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
