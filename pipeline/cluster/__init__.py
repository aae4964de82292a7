"""The pipeline on a Dask cluster (issue 16): `wsis run --cluster local[:N] | SCHEDULER_ADDRESS`.

Importing this package imports no Dask: `run_distributed` loads `pipeline.cluster.run`, which imports Dask only
when it connects (a clear error names the `cluster` extra when Dask is missing), so the default local path never
pays for it. See docs/CLUSTER.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_distributed"]


def run_distributed(*args: Any, **kwargs: Any) -> Any:
    """`pipeline.cluster.run.run_distributed`, imported on first use."""
    from pipeline.cluster.run import run_distributed as run

    return run(*args, **kwargs)
