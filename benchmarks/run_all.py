"""Run every benchmark (by hand, not in CI) and print the headline table of benchmarks/README.md.

    .venv/bin/python benchmarks/run_all.py                 # everything (about 1.5-2 h on 2 shared cores)
    .venv/bin/python benchmarks/run_all.py --only pipeline  # one or several: clean embed themes framework tagger
                                                            #   pipeline pipeline50k bertopic pipeline_extra
    .venv/bin/python benchmarks/run_all.py --table          # only print the table from benchmarks/results/

Each script writes its own results/*.json; the table reads them back (missing files show as "-").
BERTopic runs in the separate benchmark environment `.venv-bench` (see bench_bertopic.py); it needs the
kept Global Dialogues batch of `pipeline50k`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, read_result  # noqa: E402

PY = sys.executable
BENCH_PY = str(ROOT / ".venv-bench" / "bin" / "python")
STEPS: dict[str, list[list[str]]] = {
    "clean": [[PY, "benchmarks/bench_clean.py"]],
    "embed": [[PY, "benchmarks/bench_embed.py"]],
    "themes": [[PY, "benchmarks/bench_themes.py", "speed"], [PY, "benchmarks/bench_themes.py", "quality"]],
    "framework": [[PY, "benchmarks/bench_framework.py"]],
    "tagger": [[PY, "benchmarks/bench_tagger.py"]],
    "pipeline": [[PY, "benchmarks/bench_pipeline.py", "itu100", "gd1k"],
                 [PY, "benchmarks/bench_pipeline.py", "itu100", "gd10k", "--embed-backend", "onnx",
                  "--suffix", "_onnx"]],
    # not in the committed results (too slow on the shared machine): torch gd10k, the EU consultation
    "pipeline_extra": [[PY, "benchmarks/bench_pipeline.py", "gd10k", "eu"]],
    "pipeline50k": [[PY, "benchmarks/bench_pipeline.py", "gd50k", "--embed-backend", "onnx", "--suffix", "_onnx",
                     "--keep"]],
    "bertopic": [[BENCH_PY, "benchmarks/bench_bertopic.py", "--batch", "/tmp/wsis-bench/runs/gd50k/batch"]],
}


def _get(data: dict[str, Any] | None, *path: str) -> Any:
    cur: Any = data
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pipeline_rows() -> list[str]:
    """One row per pipeline scenario: answers, cold wall/CPU per stage, total, warm, peak memory."""
    rows = ["| scenario | answers | ingest | clean | embed | themes | tag | report | cold total | warm | "
            "warm/cold | peak RSS | load (1 min) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("pipeline_itu100", "pipeline_itu100_onnx", "pipeline_gd1k", "pipeline_eu", "pipeline_gd10k",
                 "pipeline_gd10k_onnx", "pipeline_gd50k_onnx", "pipeline_gd50k_onnx_run2", "pipeline_gd50k"):
        data = read_result(name)
        if not data:
            continue
        st = data["cold"]["stages"]
        cells = []
        for stage in ("ingest", "clean", "embed", "themes", "tag", "report"):
            s = st.get(stage)
            cells.append(f"{s['wall_s']:.1f} ({s['cpu_s']:.1f})" if s else "-")
        peak = max(s["peak_rss_mb"] for s in st.values()) / 1024
        cold, warm = data["cold"]["total"], data["warm"]["total"]
        backend = (data.get("param_overrides", {}).get("embed") or {}).get("backend", "torch")
        load = (_get(data, "cold", "load_before") or [None])[0]
        label = name.removeprefix("pipeline_")
        label = label if backend in label else f"{label} ({backend})"
        rows.append(
            f"| {label} | {_get(data, 'counts', 'answers')} | " + " | ".join(cells)
            + f" | {cold['wall_s']:.1f} ({cold['cpu_s']:.1f}) | {warm['wall_s']:.1f} | "
            f"{warm['wall_s'] / cold['wall_s']:.1%} | {peak:.2f} GiB | {_fmt(load)} |"
        )
    return rows


def component_rows() -> list[str]:
    """Headline figures of the per-stage benchmarks owned by the other stages."""
    rows = ["| benchmark | figure | value |", "|---|---|---|"]
    clean = read_result("clean")
    if clean:
        rows.append(f"| clean (GD {clean.get('answers')} answers) | wall s (CPU s), answers per CPU s | "
                    f"{_fmt(clean.get('clean_answers_wall_s'))} ({_fmt(clean.get('clean_answers_cpu_s'))}), "
                    f"{_fmt(clean.get('clean_answers_per_cpu_s'))} |")
        rows.append(f"| clean | peak RSS | {_fmt(clean.get('peak_rss_mb'))} MB |")
    embed = read_result("embed")
    for backend in ("torch", "onnx", "multilingual"):
        b = _get(embed, "backends", backend)
        if b:
            full = b.get("full", {})
            est = next((v for k, v in full.items() if k.startswith("cold") and isinstance(v, int | float)), None)
            rows.append(f"| embed {backend} | cold answers/s (wall), model load s, est. cold 52k s | "
                        f"{_fmt(b.get('cold_answers_per_s'))}, {_fmt(b.get('model_load_seconds'))}, {_fmt(est)} |")
    themes = read_result("themes_speed")
    for run in (themes or {}).get("runs", [])[:3]:
        rows.append(f"| themes discovery ({run.get('segments')} segments, {run.get('questions')} questions) | "
                    f"wall s (CPU s), peak RSS MB | {_fmt(run.get('wall_s'))} ({_fmt(run.get('cpu_s'))}), "
                    f"{_fmt(run.get('peak_rss_mb'))} |")
    quality = read_result("themes_quality")
    if quality:
        rows.append(f"| themes quality | see results/themes_quality.json | {len(quality)} entries |")
    tagger = read_result("bench_tagger")
    if tagger:
        rows.append(f"| tagger ({_get(tagger, 'tag', 'n_texts')} answers, vectors given) | texts/s | "
                    f"{_fmt(_get(tagger, 'tag', 'texts_per_second'))} |")
        rows.append(f"| tagger held-out | Action Lines / SDGs micro-F1 | "
                    f"{_fmt(_get(tagger, 'train', 'heldout_action_lines_micro_f1'), 3)} / "
                    f"{_fmt(_get(tagger, 'train', 'heldout_sdgs_micro_f1'), 3)} |")
        rows.append(f"| tagger dev (real answers, n={_get(tagger, 'dev_real_answers', 'n')}) | "
                    f"Action Lines / SDGs micro-F1 | "
                    f"{_fmt(_get(tagger, 'dev_real_answers', 'action_lines', 'micro_f1'), 3)} / "
                    f"{_fmt(_get(tagger, 'dev_real_answers', 'sdgs', 'micro_f1'), 3)} |")
    return rows


def bertopic_rows() -> list[str]:
    data = read_result("bertopic_gd")
    if not data:
        return []
    rows = ["| system | time wall s (CPU s) | topics/themes | outlier share | best-match F1 (weighted) | "
            "Hungarian F1 (weighted) | NMI | ARI |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, label in (("ours", "wsis themes"), ("bertopic", "BERTopic")):
        d = data[name]
        t = d.get("time") or {}
        if name == "ours" and not t:  # the themes stage timing of the same pipeline run
            t = _get(read_result("pipeline_gd50k_onnx"), "cold", "stages", "themes") or {}
        a = d["agreement_with_vendor_tags"]
        n = d.get("n_topics", d.get("n_themes"))
        rows.append(f"| {label} | {_fmt(t.get('wall_s'))} ({_fmt(t.get('cpu_s'))}) | {n} | "
                    f"{_fmt(d.get('outlier_share'), 3)} | {_fmt(a['best_match_f1_weighted'], 3)} | "
                    f"{_fmt(a['hungarian_f1_weighted'], 3)} | {_fmt(a['nmi'], 3)} | {_fmt(a['ari'], 3)} |")
    return rows


def table() -> str:
    parts = ["### Pipeline (wall s, CPU s in brackets)", *pipeline_rows(), "", "### Stages on their own",
             *component_rows()]
    bt = bertopic_rows()
    if bt:
        parts += ["", "### Themes vs BERTopic (Global Dialogues, vendor tags as gold)", *bt]
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=list(STEPS), default=None,
                    help="steps to run (default: all but pipeline_extra)")
    ap.add_argument("--table", action="store_true", help="only print the table from existing results")
    args = ap.parse_args()
    if not args.table:
        for name in args.only or [k for k in STEPS if k != "pipeline_extra"]:
            for cmd in STEPS[name]:
                print(f"$ {' '.join(cmd)}", flush=True)
                rc = subprocess.run(cmd, cwd=ROOT).returncode
                if rc != 0:
                    print(f"!! {name} failed with exit code {rc}; continuing", flush=True)
    print(table())


if __name__ == "__main__":
    main()
