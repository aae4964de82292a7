"""`wsis report`: read a processed batch, write `<batch>/report/` (CSV tables, report.xlsx, report.md,
report.html, run_manifest.json). Every file is written atomically; figures must reconcile with ingest."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.io import sha256_file, write_csv, write_json, write_text
from pipeline.provenance import collect_fallbacks, current_model_dir, package_versions
from pipeline.report.batch import OPTIONAL, load_batch
from pipeline.report.content import Report, build_report
from pipeline.report.html import render_html
from pipeline.report.markdown import render_markdown
from pipeline.report.safety import safe_obj
from pipeline.report.xlsx import write_workbook

log = logging.getLogger(__name__)

REPORT_DIR = "report"
TABLES_DIR = "tables"


def _stages_state(batch_dir: Path) -> dict[str, Any]:
    path = batch_dir / ".stages.json"
    if not path.exists():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except json.JSONDecodeError:
        return {}


def minimal_manifest(batch_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """What can be said about a batch without the runner: versions, params, artefact hashes, recorded stages."""
    state = _stages_state(batch_dir)
    stages = {
        name: {"status": "recorded", "seconds": rec.get("seconds"), "summary": rec.get("summary", {}),
               "finished_at": rec.get("finished_at")}
        for name, rec in state.items() if isinstance(rec, dict)
    }
    return {
        "wsis_themes_version": __version__,
        "started_at": None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "params": params,
        "inputs": {},
        "models": {"tagger": current_model_dir(params).name, "embedding": (params.get("embed") or {}).get("model")},
        "stages": stages,
        "fallbacks": collect_fallbacks(stages),
        "note": "built by `wsis report` from the batch folder (not by `wsis run`)",
    }


def ingest_summary(manifest: dict[str, Any] | None, batch_dir: Path) -> dict[str, Any] | None:
    """The ingest stage's own counts (from the run manifest, else .stages.json), to reconcile against."""
    stages = (manifest or {}).get("stages") or {}
    summary = (stages.get("ingest") or {}).get("summary")
    if isinstance(summary, dict) and summary:
        return summary
    rec = _stages_state(batch_dir).get("ingest") or {}
    found = rec.get("summary")
    return found if isinstance(found, dict) else None


def _share_mode(paths: list[Path]) -> None:
    """Atomic writes create private (0600) temp files; report files are for sharing, so apply the umask."""
    mask = os.umask(0)
    os.umask(mask)
    for path in paths:
        os.chmod(path, 0o666 & ~mask)


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """Write every output file of the report; return their paths (manifest excluded)."""
    tables_dir = out_dir / TABLES_DIR
    files: list[Path] = []
    wanted = {f"{t.name}.csv" for t in report.tables}
    if tables_dir.exists():
        for stale in tables_dir.glob("*.csv"):
            if stale.name not in wanted:
                stale.unlink()
    for table in report.tables:
        files.append(write_csv(table.df, tables_dir / f"{table.name}.csv"))  # write_csv neutralises every cell
    files.append(write_workbook(report, out_dir / "report.xlsx"))
    files.append(write_text(render_markdown(report), out_dir / "report.md"))
    files.append(write_text(render_html(report), out_dir / "report.html"))
    return files


def run(batch_dir: Path, params: dict[str, Any], manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build and write the report of `batch_dir`; raises ReconciliationError when figures do not add up."""
    started = time.perf_counter()
    batch_dir = Path(batch_dir)
    batch = load_batch(batch_dir)
    man = dict(manifest) if manifest is not None else minimal_manifest(batch_dir, params)
    fallbacks = man.get("fallbacks")
    if not isinstance(fallbacks, dict):
        fallbacks = collect_fallbacks(man.get("stages") or {})
    report = build_report(batch, params, ingest_summary(manifest, batch_dir), fallbacks)
    out_dir = batch_dir / REPORT_DIR
    files = write_report(report, out_dir)
    seconds = round(time.perf_counter() - started, 3)
    man["batch_artefacts"] = {
        name: sha256_file(batch_dir / name) for name in ("answers.parquet", *OPTIONAL) if (batch_dir / name).exists()
    }
    man["report"] = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": seconds,
        "headline": report.headline,
        "missing_artefacts": batch.missing,
        "reconciliation": {"checks": len(report.checks), "ok": bool(report.checks["ok"].all())},
        "files": {str(p.relative_to(out_dir)): sha256_file(p) for p in files},
    }
    write_json(safe_obj(man), out_dir / "run_manifest.json")
    _share_mode([*files, out_dir / "run_manifest.json"])
    quotes = report.table("quotes")
    log.info("report: %d tables, %d files in %s (%.1f s)", len(report.tables), len(files) + 1, out_dir, seconds)
    return {
        "tables": len(report.tables),
        "files": len(files) + 1,
        "submissions": report.headline["submissions"],
        "answered": report.headline["answered"],
        "themes": report.headline["themes"],
        "quotes": len(quotes) if quotes is not None else 0,
        "reconciliation_checks": len(report.checks),
        "missing_artefacts": len(batch.missing),
        "report_html": str(out_dir / "report.html"),
        "report_xlsx": str(out_dir / "report.xlsx"),
        "seconds": seconds,
    }
