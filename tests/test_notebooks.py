"""The notebooks run top to bottom on a processed batch (the sample batch when `make run` produced it, else the
hand-built fixture batch) and are stored without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import report_fixtures as F
from nbclient import NotebookClient

from pipeline import config

NOTEBOOKS = sorted((config.PROJECT_ROOT / "notebooks").glob("*.ipynb"))
NEEDED = ("answers.parquet", "answers_clean.parquet", "themes.parquet", "theme_assignments.parquet", "tags.parquet")


def _batch(tmp_path: Path) -> Path:
    sample = config.PROCESSED_DIR / config.SAMPLE_BATCH_DIR.name
    if all((sample / n).exists() for n in NEEDED):
        return sample
    return F.build_batch(tmp_path / "fixture-batch")


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_are_stripped(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = _batch(tmp_path)
    monkeypatch.setenv("WSIS_BATCH_DIR", str(batch))
    monkeypatch.setenv("WSIS_NO_PROGRESS", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            parts += [str(out.get("text", "")), str(data.get("text/plain", "")), str(data.get("text/html", ""))]
    text = "\n".join(parts)
    assert not any(out.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for out in c.outputs)
    assert f"batch: {batch.name}" in text
    assert "notebook finished:" in text
    assert "chart-bars" in text and "share_of_answering" in text
