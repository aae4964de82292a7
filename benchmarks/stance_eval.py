"""Stance model on real consultation answers: AU Safe and Responsible AI Q20 (two coders) and TRAI differential
pricing (40 submissions labelled by the team), with 95% bootstrap intervals, plus the speed of `stance_of`.

- Q20 target (fixed from the question before any measurement): "A risk-based approach for responsible AI should
  be mandated through regulation." Gold stance from each coder's themes (frame `q20_frame.csv`), first rule
  that applies: C (risk-tiered or mixed) -> conditional; A (mandate through regulation) -> support;
  B (voluntary or self-regulation preferred) -> oppose; D (phased or adaptive transition) -> conditional;
  E (self-regulation will fail) -> support; anything else (F, G, H, I, J, K, L, X, Y only) -> neutral.
- Split: an answer is in the tuning half when int(sha256(response_id), 16) is even, else in the held-out half.
  Design choices (features, cue lists, C) were looked at on the tuning half only; the held-out half is the
  figure to quote.
- TRAI target: "Differential pricing of data services should be allowed." Labels: `benchmarks/stance_trai_labels.csv`
  (source_file ids and stances only; texts are read from ../shared at run time). Reported for the shipped model
  and for a model retrained without the three telecom-pricing targets of the training set (so neither the
  topic nor the target wording was seen in training).
- Speed: `stance_of` on 10,000 (answer, target) pairs, once cold (sentence vectors encoded, into a temporary
  cache) and once warm (all vectors cached).
- Tuned on one half, reported on the other, and swapped (issue 15 item 1): the choices that can be tuned on real
  answers, which recipe (the shipped one, or the shipped one plus the 155 pairs of
  `data/training/stance/pairs_round3_tried_not_used.csv`) and whether to add class offsets (a calibrated class
  prior: one additive logit per class, support fixed at 0, fitted by L2-penalised log-likelihood on both coders'
  labels), are chosen on one half by mean accuracy over the two coders and reported on the other half, in both
  directions, with bootstrap intervals and a paired bootstrap against the shipped model on the reporting half.
- Augmentation-seed spread: the shipped recipe retrained with augmentation seeds 0-4 (seed 0 is the shipped
  model), to show how much of a difference between models is the seed alone.

    .venv/bin/python benchmarks/stance_eval.py [--n-boot 2000] [--no-speed]

Writes benchmarks/results/stance_eval.json and benchmarks/results/stance_eval.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WSIS_NO_PROGRESS", "1")

from pipeline.evaluate import bootstrap_weights, percentile_ci  # noqa: E402
from pipeline.stance import STANCES, stance_of  # noqa: E402
from pipeline.stance import features as feats  # noqa: E402
from pipeline.stance import train as stance_train  # noqa: E402
from pipeline.stance.api import current_model_file, get_model  # noqa: E402
from pipeline.stance.model import StanceModel, default_encoder  # noqa: E402

SHARED = Path(os.environ.get("WSIS_SHARED_DIR", ROOT.parent / "shared"))
DEVSET = SHARED / "devsets" / "framework_au_srai"
TRAI_CSV = SHARED / "corpora" / "trai-differential-pricing-2015" / "trai_differential_pricing_submissions.csv"
TRAI_LABELS = ROOT / "benchmarks" / "stance_trai_labels.csv"
RESULTS = ROOT / "benchmarks" / "results"

#: 155 pairs written for issue 15's third round (nothing from respondents), tried as a candidate recipe.
ROUND3_PAIRS = ROOT / "data" / "training" / "stance" / "pairs_round3_tried_not_used.csv"
#: Augmentation seeds of the seed-spread section (0 is the shipped model's).
SPREAD_SEEDS = (0, 1, 2, 3, 4)
#: L2 penalty of the class offsets (on the logit scale): keeps three offsets fitted on ~60 answers modest.
OFFSET_RIDGE = 0.5

Q20_TARGET = "A risk-based approach for responsible AI should be mandated through regulation."
TRAI_TARGET = "Differential pricing of data services should be allowed."
#: Training targets about telecom pricing, left out for the "topic unseen" TRAI figure.
TELECOM_TARGETS = (
    "Differential pricing of data services should be allowed",
    "Telecom operators should be allowed to offer zero-rated access to selected apps",
    "Operators should be required to treat all internet traffic equally (net neutrality)",
)
#: Q20 coding-frame themes -> stance toward Q20_TARGET, first match wins (see the module doc).
Q20_RULES: tuple[tuple[str, str], ...] = (("C", "conditional"), ("A", "support"), ("B", "oppose"),
                                          ("D", "conditional"), ("E", "support"))


def q20_stance(themes: str) -> str:
    """A coder's theme set (e.g. "A;E;F") as a stance toward the Q20 target."""
    codes = {c.strip() for c in str(themes).split(";")}
    for code, stance in Q20_RULES:
        if code in codes:
            return stance
    return "neutral"


def in_tuning_half(response_id: Any) -> bool:
    """The fixed split: tuning half when the sha256 of the id is even."""
    return int(hashlib.sha256(str(response_id).encode()).hexdigest(), 16) % 2 == 0


def load_q20() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(answers, gold of coder 1, gold of coder 2) of the dev suite's Q20, texts joined from ../shared."""
    sys.path.insert(0, str(DEVSET))
    from load import load_question  # type: ignore[import-not-found]

    answers, _frame, c1, c2 = load_question("q20")
    return answers, c1.themes.map(q20_stance).to_numpy(), c2.themes.map(q20_stance).to_numpy()


def load_trai() -> tuple[list[str], np.ndarray, list[str]]:
    """(texts, gold, ids) of the labelled TRAI submissions."""
    labels = pd.read_csv(TRAI_LABELS)
    corpus = pd.read_csv(TRAI_CSV, dtype=str, keep_default_na=False)
    text = dict(zip(corpus.source_file, corpus.text, strict=True))
    missing = [i for i in labels.id if i not in text]
    if missing:
        raise SystemExit(f"{TRAI_LABELS}: ids not in the corpus: {missing[:3]}")
    return [text[i] for i in labels.id], labels.stance.to_numpy(), list(labels.id)


def scores(gold: np.ndarray, pred: np.ndarray, n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Accuracy and per-class precision/recall with 95% percentile bootstrap intervals over answers."""
    gold, pred = np.asarray(gold, dtype=object), np.asarray(pred, dtype=object)
    n = len(gold)
    correct = (gold == pred).astype(float)
    per: dict[str, Any] = {}
    g = np.stack([(gold == c).astype(float) for c in STANCES], axis=1)
    p = np.stack([(pred == c).astype(float) for c in STANCES], axis=1)
    tp = g * p
    acc_b, prec_b, rec_b = [], [], []
    for w in bootstrap_weights(n, n_boot, seed):
        acc_b.append(w @ correct / n)
        with np.errstate(invalid="ignore", divide="ignore"):
            prec_b.append((w @ tp) / (w @ p))
            rec_b.append((w @ tp) / (w @ g))
    acc_arr = np.concatenate(acc_b) if acc_b else np.empty(0)
    prec_arr = np.concatenate(prec_b) if prec_b else np.empty((0, len(STANCES)))
    rec_arr = np.concatenate(rec_b) if rec_b else np.empty((0, len(STANCES)))
    for j, c in enumerate(STANCES):
        n_pred, n_gold, n_tp = p[:, j].sum(), g[:, j].sum(), tp[:, j].sum()
        per[c] = {
            "n_gold": int(n_gold), "n_pred": int(n_pred),
            "precision": float(n_tp / n_pred) if n_pred else None,
            "precision_ci": percentile_ci(prec_arr[:, j]) if n_pred else None,
            "recall": float(n_tp / n_gold) if n_gold else None,
            "recall_ci": percentile_ci(rec_arr[:, j]) if n_gold else None,
        }
    confusion = pd.crosstab(pd.Series(gold, name="gold"), pd.Series(pred, name="pred"))
    confusion = confusion.reindex(index=list(STANCES), columns=list(STANCES), fill_value=0)
    return {"n": n, "accuracy": float(correct.mean()) if n else None, "accuracy_ci": percentile_ci(acc_arr),
            "per_class": per, "confusion": {k: {c: int(v) for c, v in row.items()}
                                            for k, row in confusion.to_dict(orient="index").items()}}


def retrain(df: pd.DataFrame, seed: int = stance_train.SEED) -> StanceModel:
    """The shipped recipe (augmentation, features, parameters) fitted on other pairs or another seed."""
    full = stance_train.augment(df, seed=seed)
    X = feats.featurize(list(full.target), list(full.text), default_encoder(),
                        top_k=int(stance_train.PARAMS["top_k"]))
    return StanceModel(**stance_train.PARAMS).fit(X, full.stance.to_numpy(dtype=object))


def model_without(targets: tuple[str, ...]) -> StanceModel:
    """The shipped recipe retrained without the given training targets."""
    df = stance_train.read_pairs()
    return retrain(df[~df.target.isin(targets)].reset_index(drop=True))


def paired_diff(gold: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n_boot: int,
                seed: int = 0) -> dict[str, Any]:
    """Accuracy of a minus accuracy of b on the same answers, with a 95% paired bootstrap interval and the share of
    resamples in which a is not better (a one-sided bootstrap p-value for "a beats b")."""
    gold = np.asarray(gold, dtype=object)
    d = (np.asarray(pred_a, dtype=object) == gold).astype(float) - (np.asarray(pred_b, dtype=object) == gold)
    n = len(d)
    boot = np.concatenate([w @ d / n for w in bootstrap_weights(n, n_boot, seed)]) if n else np.empty(0)
    return {"diff": float(d.mean()) if n else None, "diff_ci": percentile_ci(boot),
            "p_not_better": float(np.mean(boot <= 0)) if n else None}


def fit_offsets(z: np.ndarray, golds: list[np.ndarray], classes: list[str], ridge: float = OFFSET_RIDGE) -> np.ndarray:
    """Class offsets added to the model's logits `z` (support's fixed at 0): the L2-penalised maximum-likelihood
    calibration of the class prior on labelled answers (every coder's labels count once)."""
    from scipy.optimize import minimize

    zz = np.concatenate([z] * len(golds))
    y = np.concatenate([[classes.index(g) for g in gold] for gold in golds])
    free = [j for j, c in enumerate(classes) if c != "support"]

    def nll(b: np.ndarray) -> float:
        o = np.zeros(len(classes))
        o[free] = b
        t = zz + o
        t = t - t.max(axis=1, keepdims=True)
        logp = t - np.log(np.exp(t).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].sum() + ridge * float(b @ b))

    out = np.zeros(len(classes))
    out[free] = minimize(nll, np.zeros(len(free)), method="L-BFGS-B").x
    return out


def split_protocol(logits: dict[str, tuple[np.ndarray, list[str]]], golds: list[np.ndarray], tune: np.ndarray,
                   n_boot: int) -> dict[str, Any]:
    """Choose recipe x calibration on one half, report on the other, both directions (see the module doc)."""
    out: dict[str, Any] = {}
    for direction, fit_mask in (("tuned_on_tuning_reported_on_held_out", tune),
                                ("tuned_on_held_out_reported_on_tuning", ~tune)):
        rep = ~fit_mask
        options: list[dict[str, Any]] = []
        for recipe, (z, classes) in logits.items():
            for calibrated in (False, True):
                off = fit_offsets(z[fit_mask], [g[fit_mask] for g in golds], classes) if calibrated else \
                    np.zeros(len(classes))
                pred = np.asarray(classes, dtype=object)[(z + off).argmax(axis=1)]
                options.append({"recipe": recipe, "calibrated": calibrated,
                                "offsets": {c: round(float(o), 3) for c, o in zip(classes, off, strict=True)},
                                "fit_accuracy": float(np.mean([np.mean(pred[fit_mask] == g[fit_mask]) for g in golds])),
                                "pred": pred})
        # the first option with the best accuracy on the fitting half: fewer choices win ties (shipped, uncalibrated)
        best = max(options, key=lambda o: o["fit_accuracy"])
        shipped = options[0]
        out[direction] = {
            "options": [{k: v for k, v in o.items() if k != "pred"}
                        | {"report_accuracy": [float(np.mean(o["pred"][rep] == g[rep])) for g in golds]}
                        for o in options],
            "chosen": {"recipe": best["recipe"], "calibrated": best["calibrated"], "offsets": best["offsets"]},
            "reported": [scores(g[rep], best["pred"][rep], n_boot) for g in golds],
            "vs_shipped": [paired_diff(g[rep], best["pred"][rep], shipped["pred"][rep], n_boot) for g in golds],
        }
    return out


def seed_spread(answers: pd.DataFrame, golds: list[np.ndarray], tune: np.ndarray) -> dict[str, Any]:
    """Held-out and tuning accuracy of the shipped recipe retrained with each augmentation seed."""
    df = stance_train.read_pairs()
    rows = []
    for seed in SPREAD_SEEDS:
        pred = stance_of(list(answers.answer), Q20_TARGET, model=retrain(df, seed)).stance.to_numpy(dtype=object)
        rows.append({"seed": seed, "held_out": [float(np.mean(pred[~tune] == g[~tune])) for g in golds],
                     "tuning": [float(np.mean(pred[tune] == g[tune])) for g in golds]})
    held = np.array([r["held_out"] for r in rows])
    return {"seeds": rows, "held_out_mean": held.mean(axis=0).tolist(), "held_out_min": held.min(axis=0).tolist(),
            "held_out_max": held.max(axis=0).tolist()}


def q20_logits(model: StanceModel, answers: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Log-probabilities of a model on the Q20 answers toward Q20_TARGET, columns in STANCES order."""
    p = stance_of(list(answers.answer), Q20_TARGET, model=model)[[f"p_{c}" for c in STANCES]].to_numpy()
    return np.log(np.clip(p, 1e-12, None)), list(STANCES)


def speed(n_pairs: int = 10_000) -> dict[str, Any]:
    """Seconds for `stance_of` on n_pairs pairs (Q20 + Q11 answers x training targets), cold then warm."""
    sys.path.insert(0, str(DEVSET))
    from load import load_question

    answers = list(load_question("q20")[0].answer) + list(load_question("q11")[0].answer)
    targets = list(dict.fromkeys(stance_train.read_pairs().target))
    pairs = [(a, t) for t in targets for a in answers][:n_pairs]
    texts, tlist = [p[0] for p in pairs], [p[1] for p in pairs]
    out: dict[str, Any] = {"pairs": len(pairs), "answers": len(set(texts)), "targets": len(set(tlist))}
    with tempfile.TemporaryDirectory() as cache:
        for run in ("cold", "warm"):
            t0 = time.perf_counter()
            stance_of(texts, tlist, cache_dir=Path(cache))
            out[f"{run}_seconds"] = round(time.perf_counter() - t0, 2)
    out["warm_pairs_per_s"] = round(len(pairs) / out["warm_seconds"], 1)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model_file = current_model_file()
    result: dict[str, Any] = {
        "command": "python benchmarks/stance_eval.py" + (f" --n-boot {args.n_boot}" if args.n_boot != 2000 else "")
        + (" --no-speed" if args.no_speed else ""),
        "model": str(model_file.relative_to(ROOT)), "q20_target": Q20_TARGET, "trai_target": TRAI_TARGET,
        "q20_rules": [f"{c} -> {s}" for c, s in Q20_RULES] + ["otherwise -> neutral"],
    }
    model = get_model()

    answers, g1, g2 = load_q20()
    pred = stance_of(list(answers.answer), Q20_TARGET, model=model).stance.to_numpy(dtype=object)
    tune = np.array([in_tuning_half(r) for r in answers.response_id])
    q20: dict[str, Any] = {"coder_agreement": float(np.mean(g1 == g2)), "n_tuning": int(tune.sum()),
                           "n_held_out": int((~tune).sum())}
    for name, gold in (("coder1", g1), ("coder2", g2)):
        q20[name] = {"held_out": scores(gold[~tune], pred[~tune], args.n_boot),
                     "tuning": scores(gold[tune], pred[tune], args.n_boot),
                     "all": scores(gold, pred, args.n_boot)}
    q20["majority_baseline_held_out"] = float(np.mean(g1[~tune] == pd.Series(g1[tune]).mode()[0]))
    result["q20"] = q20
    round3 = pd.concat([stance_train.read_pairs(), stance_train.read_pairs(ROUND3_PAIRS)], ignore_index=True)
    logits = {"shipped": q20_logits(model, answers), "shipped + round-3 pairs": q20_logits(retrain(round3), answers)}
    result["q20_split_protocol"] = split_protocol(logits, [g1, g2], tune, args.n_boot)
    result["q20_seed_spread"] = seed_spread(answers, [g1, g2], tune)

    texts, gold, _ids = load_trai()
    trai_pred = stance_of(texts, TRAI_TARGET, model=model).stance.to_numpy(dtype=object)
    unseen = model_without(TELECOM_TARGETS)
    trai_unseen = stance_of(texts, TRAI_TARGET, model=unseen).stance.to_numpy(dtype=object)
    result["trai"] = {"shipped": scores(gold, trai_pred, args.n_boot),
                      "without_telecom_targets": scores(gold, trai_unseen, args.n_boot),
                      "left_out_targets": list(TELECOM_TARGETS),
                      "majority_baseline": float(np.mean(gold == pd.Series(gold).mode()[0]))}
    if not args.no_speed:
        result["speed"] = speed()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stance_eval.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "stance_eval.md").write_text(to_markdown(result), encoding="utf-8")
    print(to_markdown(result))


def _protocol_markdown(r: dict[str, Any]) -> list[str]:
    """The split-protocol and seed-spread sections (absent from results made before them)."""
    if "q20_split_protocol" not in r:
        return []
    lines = ["### Tuned on one half, reported on the other (and swapped)",
             "Options: recipe (shipped; shipped + the 155 round-3 pairs) x class offsets (none; fitted on the tuning "
             "side). Chosen by mean accuracy over the two coders on the tuning side; ties go to the fewer choices.", ""]
    for direction, d in r["q20_split_protocol"].items():
        c = d["chosen"]
        lines += [f"**{direction.replace('_', ' ')}**: chosen {c['recipe']}, "
                  f"{'offsets ' + str(c['offsets']) if c['calibrated'] else 'no offsets'}.", "",
                  "| option | tuning-side accuracy (mean of coders) | reporting-side accuracy coder 1 / coder 2 |",
                  "|---|---|---|"]
        for o in d["options"]:
            name = o["recipe"] + (" + offsets" if o["calibrated"] else "")
            lines.append(f"| {name} | {o['fit_accuracy']:.3f} | {o['report_accuracy'][0]:.3f} / "
                         f"{o['report_accuracy'][1]:.3f} |")
        for coder, (sc, vs) in enumerate(zip(d["reported"], d["vs_shipped"], strict=True), start=1):
            lines.append(f"\nChosen option vs coder {coder}: accuracy {_fmt(sc['accuracy'], sc['accuracy_ci'])} "
                         f"(n={sc['n']}); minus the shipped model {_fmt(vs['diff'], vs['diff_ci'])}, "
                         f"paired bootstrap P(not better) {vs['p_not_better']:.2f}.")
        lines.append("")
    sp = r["q20_seed_spread"]
    lines += ["### Augmentation-seed spread (shipped recipe, seeds " + ", ".join(str(x["seed"]) for x in sp["seeds"])
              + ")", "", "| seed | held-out coder 1 / coder 2 | tuning coder 1 / coder 2 |", "|---|---|---|"]
    lines += [f"| {x['seed']} | {x['held_out'][0]:.3f} / {x['held_out'][1]:.3f} | {x['tuning'][0]:.3f} / "
              f"{x['tuning'][1]:.3f} |" for x in sp["seeds"]]
    lines += ["", f"Held-out mean {sp['held_out_mean'][0]:.3f} / {sp['held_out_mean'][1]:.3f} (range "
              f"{sp['held_out_min'][0]:.3f}-{sp['held_out_max'][0]:.3f} / {sp['held_out_min'][1]:.3f}-"
              f"{sp['held_out_max'][1]:.3f}): seed 0 is the shipped model.", ""]
    return lines


def _fmt(v: float | None, ci: list[float] | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _table(s: dict[str, Any]) -> str:
    rows = [f"| {c} | {v['n_gold']} | {v['n_pred']} | {_fmt(v['precision'], v['precision_ci'])} | "
            f"{_fmt(v['recall'], v['recall_ci'])} |" for c, v in s["per_class"].items()]
    conf = " / ".join(f"{g}: " + ", ".join(f"{p} {n}" for p, n in row.items() if n) for g, row in
                      s["confusion"].items() if any(row.values()))
    return ("| stance | gold n | predicted n | precision [95% CI] | recall [95% CI] |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + f"\n\nConfusion (gold: predicted counts): {conf}\n")


def to_markdown(r: dict[str, Any]) -> str:
    q, t = r["q20"], r["trai"]
    lines = [
        "# Stance evaluation", "", f"Command: `{r['command']}` (model `{r['model']}`).", "",
        "## AU Safe and Responsible AI, Q20", f"Target: \"{r['q20_target']}\". Gold from the coders' themes: "
        + "; ".join(r["q20_rules"]) + ".",
        f"Coder agreement on the mapped stance: {q['coder_agreement']:.3f}. Split by sha256(response_id): "
        f"{q['n_tuning']} tuning, {q['n_held_out']} held out; majority-class baseline on the held-out half "
        f"{q['majority_baseline_held_out']:.3f}.", "",
    ]
    for coder in ("coder1", "coder2"):
        h = q[coder]["held_out"]
        lines += [f"### Held-out half vs {coder}: accuracy {_fmt(h['accuracy'], h['accuracy_ci'])} (n={h['n']})",
                  "", _table(h),
                  f"Tuning half: accuracy {q[coder]['tuning']['accuracy']:.3f}; all 120: "
                  f"{q[coder]['all']['accuracy']:.3f}.", ""]
    lines += _protocol_markdown(r)
    s, u = t["shipped"], t["without_telecom_targets"]
    lines += ["## TRAI differential pricing (40 submissions labelled by the team)",
              f"Target: \"{r['trai_target']}\". Majority-class baseline {t['majority_baseline']:.3f}.", "",
              f"### Shipped model: accuracy {_fmt(s['accuracy'], s['accuracy_ci'])} (n={s['n']})", "", _table(s),
              f"### Retrained without the telecom targets: accuracy {_fmt(u['accuracy'], u['accuracy_ci'])}", "",
              _table(u)]
    if "speed" in r:
        sp = r["speed"]
        lines += ["## Speed", f"`stance_of` on {sp['pairs']} pairs ({sp['answers']} answers x {sp['targets']} "
                  f"targets): cold {sp['cold_seconds']} s (sentence vectors encoded), warm {sp['warm_seconds']} s "
                  f"({sp['warm_pairs_per_s']} pairs/s) on the 2 shared cores.", ""]
    lines += [f"Total {r['seconds']} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
