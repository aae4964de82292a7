"""Does retraining on analyst labels of real answers improve the tagger on other real answers?

The mechanism measured is `wsis train-tagger --labels FILE` itself (`pipeline.tagger.train.run`): an analyst
labels one half of the two-annotator dev set `../shared/devsets/tags_real_answers` (annotator 1's labels
play the analyst; halves as in `benchmarks/tags_real_answers.py`: sha1 of the item id, alternating within
corpus), the tagger is retrained on the written examples + those labels (train-tagger keeps its own
hash-split validation part of them and decides promotion on it), and the newest version trained on written
examples only (old; the shipped CURRENT has seen this dev set) and the retrained (new) model tag the OTHER half
with the decision rules of params.yaml. Reported: micro-F1 of Action Lines and
of SDGs against both annotators (averaged), their mean, and the paired gain new - old with a 95% CI
(bootstrap over answers, the same resamples for both models and both annotators); then the halves swap.
Variant `all_labels` trains on the whole labelled half (`analyst_validation_share: 0`, how the shipped
version is trained on all 200 answers).

The dev set's texts are read from ../shared at run time and written only to a temporary label file; the
repository holds labels, never texts.

    .venv/bin/python benchmarks/tags_retrain.py [--n-boot 1000] [--no-variant]

Writes benchmarks/results/tags_retrain.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WSIS_NO_PROGRESS", "1")

from tags_real_answers import KINDS, gold, halves, load_devset, shared_dir, with_ci  # noqa: E402

from pipeline import config  # noqa: E402
from pipeline.evaluate import binarize, bootstrap_multilabel, percentile_ci, split_labels  # noqa: E402
from pipeline.tagger import stage, train  # noqa: E402
from pipeline.tagger.model import Tagger, load_tagger  # noqa: E402
from pipeline.tagger.realhead import RealAnswerHead  # noqa: E402


def written_only_version(root: Path) -> Path:
    """The newest version folder trained on written examples only: the 'before' of retraining (a CURRENT
    trained on this dev set would make the comparison in-sample)."""
    for folder in sorted((p for p in root.iterdir() if (p / "metrics.json").is_file()), reverse=True):
        sources = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))["data"]["train_sources"]
        if set(sources) == {"handwritten"}:
            return folder
    raise SystemExit(f"no version trained on written examples only under {root}")


def label_file(df: pd.DataFrame, rows: np.ndarray, path: Path, annotator: int = 1) -> Path:
    """The analyst's label file (`id`, `text`, `action_lines`, `sdgs`) for `rows`, outside the repository."""
    sub = df[rows]
    pd.DataFrame({"id": sub["item"], "text": sub["text"], "action_lines": sub[f"action_lines_{annotator}"],
                  "sdgs": sub[f"sdgs_{annotator}"]}).to_csv(path, index=False)
    return path


def predict(tagger: Tagger, df: pd.DataFrame, params: dict[str, Any],
            head: RealAnswerHead | None = None) -> dict[str, list[list[str]]]:
    """Codes per text, tagged as `wsis tag --input` tags them (params.yaml's decision rules, the version's
    real-answer head if it has one)."""
    out, _ = stage.tag_adhoc_frame(tagger, pd.DataFrame({"id": df["item"], "text": df["text"]}), params,
                                   head=head)
    return {"action_lines": [split_labels(x) for x in out["action_lines"]],
            "sdgs": [split_labels(x) for x in out["sdgs"]]}


def mean_f1_dist(df: pd.DataFrame, pred: dict[str, list[list[str]]], rows: np.ndarray, n_boot: int,
                 seed: int) -> np.ndarray:
    """Bootstrap distribution of the mean (over kinds and annotators) micro-F1 on `rows`; the same seed and
    size give the same resamples for every model, so two distributions can be subtracted (paired)."""
    idx = np.flatnonzero(rows)
    parts = []
    for kind in KINDS:
        p = [pred[kind][i] for i in idx]
        for a in (1, 2):
            g = [gold(df, kind, a)[i] for i in idx]
            labels = sorted({x for r in g + p for x in r})
            yt, _ = binarize(g, labels)
            yp, _ = binarize(p, labels)
            parts.append(bootstrap_multilabel(yt, yp, n_boot, seed)["micro_f1"])
    return np.asarray(np.mean(np.vstack(parts), axis=0))


def _mean(m: dict[str, Any]) -> float:
    return round((m["action_lines"]["f1"] + m["sdgs"]["f1"]) / 2, 4)


def fold(df: pd.DataFrame, half: np.ndarray, h: int, params: dict[str, Any], base: Path,
         old_pred: dict[str, list[list[str]]], work: Path, n_boot: int, seed: int) -> dict[str, Any]:
    """Label half `h`, retrain through train-tagger in a private models folder, evaluate on the other half."""
    labelled, test = half == h, half != h
    models = work / f"models_{h}"
    shutil.rmtree(models, ignore_errors=True)
    shutil.copytree(base, models / "tagger" / base.name)
    (models / "tagger" / "CURRENT").write_text(base.name + "\n", encoding="utf-8")
    labels = label_file(df, labelled, work / f"analyst_half{h}.csv")
    t0 = time.perf_counter()
    summary = train.run([labels], params, models)
    seconds = round(time.perf_counter() - t0, 1)
    new, folder = train.load_model(params, Path(summary["model_dir"]))
    new_pred = predict(new, df, params, train.load_real_head(folder, new))
    d_old = mean_f1_dist(df, old_pred, test, n_boot, seed)
    d_new = mean_f1_dist(df, new_pred, test, n_boot, seed)
    before, after = with_ci(df, old_pred, test, n_boot, seed), with_ci(df, new_pred, test, n_boot, seed)
    ci = percentile_ci(d_new - d_old)
    metrics = json.loads((Path(summary["model_dir"]) / "metrics.json").read_text(encoding="utf-8"))
    return {
        "labelled_half": h, "evaluated_half": 1 - h, "n_labelled": int(labelled.sum()),
        "n_evaluated": int(test.sum()),
        "train_tagger": {k: summary[k] for k in ("n_train", "n_validation", "compared_on", "gain", "gain_ci",
                                                 "promoted", "real_answer_mean_micro_f1",
                                                 "real_answer_before_mean_micro_f1", "heldout_micro_f1",
                                                 "before_micro_f1")} | {"seconds": seconds},
        "train_tagger_rows": metrics["data"]["rows_by_source_and_split"],
        "threshold_shift": metrics.get("threshold_shift"), "real_head": metrics.get("real_head"),
        "before": before, "after": after,
        "before_mean_micro_f1": _mean(before), "after_mean_micro_f1": _mean(after),
        "after_mean_micro_f1_ci": [round(x, 4) for x in percentile_ci(d_new) or []],
        "gain": round(_mean(after) - _mean(before), 4),
        "gain_ci": [round(x, 4) for x in ci] if ci else None,
    }


def summarise(folds: list[dict[str, Any]]) -> dict[str, Any]:
    gains = [f["gain"] for f in folds]
    reach = [f["after_mean_micro_f1"] for f in folds]
    return {"mean_gain": round(float(np.mean(gains)), 4), "min_gain": round(min(gains), 4),
            "mean_reach": round(float(np.mean(reach)), 4), "min_reach": round(min(reach), 4),
            "every_gain_ci_above_0": all(f["gain_ci"] and f["gain_ci"][0] > 0 for f in folds),
            "target_gain_0.05_met": min(gains) >= 0.05, "target_reach_0.68_met": min(reach) >= 0.68}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--no-variant", action="store_true", help="skip the all-labels variant")
    ap.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                    help="override a params.yaml `tag:` key (YAML value), e.g. --tag analyst_weight=5")
    ap.add_argument("--base", type=Path, default=None,
                    help="version folder retrained from (default: newest trained on written examples only)")
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "tags_retrain.json")
    args = ap.parse_args()
    shared = shared_dir()
    if not (shared / "devsets" / "tags_real_answers").is_dir():
        sys.exit(f"no dev set under {shared}/devsets/tags_real_answers")
    t0 = time.perf_counter()
    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.tag)}
    params = config.load_params(overrides={"tag": overrides} if overrides else None)
    section = train.tag_params(params)
    seed = int(params.get("seed", 0))
    df = load_devset(shared).reset_index(drop=True)
    half = halves(df)
    old_dir = args.base or written_only_version(train.tagger_root())
    old = load_tagger(old_dir / "tagger.skops")
    old_pred = predict(old, df, params)
    variants = {"default": params}
    if not args.no_variant:
        variants["all_labels"] = config.deep_merge(params, {"tag": {"analyst_validation_share": 0.0}})
    result: dict[str, Any] = {
        "command": "benchmarks/tags_retrain.py" + (" --no-variant" if args.no_variant else "")
                   + (f" --n-boot {args.n_boot}" if args.n_boot != 1000 else "")
                   + "".join(f" --tag {item}" for item in args.tag)
                   + (f" --base {args.base}" if args.base else ""),
        "devset": "../shared/devsets/tags_real_answers", "n_answers": len(df), "old_model": old_dir.name,
        "analyst": "annotator 1", "evaluated_against": "annotators 1 and 2 (micro-F1 averaged)",
        "params": {k: section[k] for k in ("analyst_weight", "analyst_validation_share", "analyst_validation_min",
                                           "rule", "whole_weight", "action_line_margin", "sdg_margin",
                                           "max_sdgs")},
    }
    with tempfile.TemporaryDirectory(prefix="wsis-retrain-") as tmp:
        for name, p in variants.items():
            folds = [fold(df, half, h, p, old_dir, old_pred, Path(tmp), args.n_boot, seed) for h in (0, 1)]
            result[name] = {"folds": folds, "summary": summarise(folds)}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = args.output
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    _print(result)


def _print(r: dict[str, Any]) -> None:
    print("| variant | labelled half -> evaluated half | before mean F1 | after mean F1 [95% CI] | "
          "gain [95% CI] | AL after | SDG after | train-tagger gain on its validation | promoted |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("default", "all_labels"):
        if name not in r:
            continue
        for f in r[name]["folds"]:
            t = f["train_tagger"]
            print(f"| {name} | {f['labelled_half']} -> {f['evaluated_half']} | {f['before_mean_micro_f1']:.3f} | "
                  f"{f['after_mean_micro_f1']:.3f} {f['after_mean_micro_f1_ci']} | {f['gain']:+.3f} {f['gain_ci']} "
                  f"| {f['after']['action_lines']['f1']:.3f} | {f['after']['sdgs']['f1']:.3f} | "
                  f"{t['gain']} {t['gain_ci']} ({t['compared_on']}) | {t['promoted']} |")
        print(name, r[name]["summary"])


if __name__ == "__main__":
    main()
