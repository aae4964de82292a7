"""Train the shipped stance model: `python -m pipeline.stance.train [--out models/stance] [--version V]`.

Reproducible: the training pairs are `data/training/stance/pairs.csv`, augmentation is seeded, the solver is
deterministic (lbfgs) and the version name defaults to a digest of the data and the code's parameters, so the
same inputs give the same version folder and the same predictions. Writes `<out>/<version>/stance.skops`,
`metrics.json` (cross-validated figures by held-out topic, sha256 of the model file) and `README.md` (model
card), then points `<out>/CURRENT` at it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.registry import HASHES_KEY, METRICS_FILE, STANCE
from pipeline.stance import features as feats
from pipeline.stance.model import MODEL_FILE, STANCES, StanceModel, default_encoder, load_model, save_model

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "training" / "stance" / "pairs.csv"
MODELS = ROOT / "models" / "stance"

#: Chosen by 5-fold cross-validation grouped by target on the training pairs only (never on the dev sets).
PARAMS: dict[str, Any] = {"C": 0.02, "top_k": feats.TOP_K, "class_weight": "balanced"}
SEED = 0
N_FOLDS = 5

#: Topic-free filler sentences, written for augmentation: real answers wrap a position in politeness,
#: framing and references, so training copies get some of these around their stance sentence.
FILLERS: tuple[str, ...] = (
    "Thank you for the opportunity to respond to this consultation.",
    "We have read the discussion paper with interest.",
    "Our organisation has members across the country.",
    "This response reflects discussions with our members over several months.",
    "We set out our reasoning below.",
    "There are several points to make here.",
    "The issue has been debated for many years.",
    "We would be happy to meet officials to discuss this further.",
    "Further detail is given in our full submission.",
    "Our comments draw on experience in other jurisdictions.",
    "The questions in this section are closely linked.",
    "We note the range of views expressed at the public forums.",
    "In summary, our view is as follows.",
    "Many stakeholders will be affected by the outcome.",
    "The evidence base is still developing.",
)


def read_pairs(path: Path = DATA) -> pd.DataFrame:
    """The hand-written pairs (target, text, stance), checked."""
    from pipeline.errors import InputError

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"target", "text", "stance"} - set(df.columns)
    if missing:
        raise InputError(str(path), None, f"missing columns {sorted(missing)}")
    bad = df[~df.stance.isin(STANCES)]
    if len(bad):
        raise InputError(str(path), f"row {int(bad.index[0]) + 2}", f"stance {bad.stance.iloc[0]!r} is not one of "
                         f"{list(STANCES)}")
    return df


def augment(df: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """One extra copy per pair with 1-4 context sentences (the target's neutral answers and fillers) around
    the stance sentence, so long answers and short ones look alike to the model. Neutral copies stay neutral."""
    rng = np.random.default_rng(seed)
    neutral = {t: list(g.text) for t, g in df[df.stance == "neutral"].groupby("target", sort=True)}
    rows = []
    for t, text, stance in zip(df.target, df.text, df.stance, strict=True):
        pool = [s for s in neutral.get(t, []) if s != text] + list(FILLERS)
        k = int(rng.integers(1, 5))
        ctx = [pool[i] for i in rng.choice(len(pool), size=min(k, len(pool)), replace=False)]
        pos = int(rng.integers(0, len(ctx) + 1))
        rows.append((t, " ".join(ctx[:pos] + [text] + ctx[pos:]), stance))
    aug = pd.DataFrame(rows, columns=["target", "text", "stance"])
    return pd.concat([df[["target", "text", "stance"]], aug], ignore_index=True)


def cross_validate(X: np.ndarray, y: np.ndarray, groups: np.ndarray, original: np.ndarray,
                   params: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and per-class P/R of folds that hold out whole targets (topics), scored on the original
    (non-augmented) pairs only."""
    from sklearn.metrics import precision_recall_fscore_support
    from sklearn.model_selection import GroupKFold

    pred = np.empty(len(y), dtype=object)
    for tr, te in GroupKFold(n_splits=N_FOLDS).split(X, y, groups):
        pred[te] = StanceModel(**params).fit(X[tr], y[tr]).predict(X[te])
    yt, yp = y[original], pred[original]
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=list(STANCES), zero_division=0)
    return {"accuracy": float(np.mean(yt == yp)), "n": int(len(yt)),
            "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                              "support": int(s[i])} for i, c in enumerate(STANCES)}}


def version_of(df: pd.DataFrame, params: dict[str, Any]) -> str:
    """Version name: a digest of the training data, parameters and the code that makes the model (the features
    module, the estimator class, the augmentation and the pair reader), so the same inputs give the same name and
    an unrelated edit (loading, the model card, the CLI) does not rename it."""
    import inspect

    h = hashlib.sha256()
    h.update(df.to_csv(index=False).encode())
    h.update(json.dumps({**params, "seed": SEED, "features": feats.feature_names()}, sort_keys=True).encode())
    h.update(Path(feats.__file__).read_bytes())
    for obj in (StanceModel, augment, read_pairs):
        h.update(inspect.getsource(obj).encode())
    return "v2-" + h.hexdigest()[:10]


def train(out: Path = MODELS, version: str | None = None, data: Path = DATA) -> Path:
    """Fit, cross-validate, save and verify the model; returns the version folder."""
    t0 = time.perf_counter()
    df = read_pairs(data)
    full = augment(df)
    original = np.arange(len(full)) < len(df)
    enc = default_encoder()
    X = feats.featurize(list(full.target), list(full.text), enc, top_k=int(PARAMS["top_k"]))
    y = full.stance.to_numpy(dtype=object)
    cv = cross_validate(X, y, full.target.to_numpy(), original, PARAMS)
    model = StanceModel(**PARAMS).fit(X, y)
    version = version or version_of(df, PARAMS)
    folder = Path(out) / version
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILE
    save_model(model, path)
    from pipeline.io import sha256_file, write_json, write_text

    digest = sha256_file(path)
    counts = df.stance.value_counts().reindex(list(STANCES)).fillna(0).astype(int).to_dict()
    metrics = {
        "version": version, "params": PARAMS, "seed": SEED, "n_pairs": len(df), "n_targets": int(df.target.nunique()),
        "n_train_rows_after_augmentation": len(full), "class_counts": counts,
        "cv_by_target": cv, "features": feats.feature_names(), "embed": "torch all-MiniLM-L6-v2 (max_seq_length 256)",
        "train_seconds": round(time.perf_counter() - t0, 1), HASHES_KEY: {MODEL_FILE: digest},
    }
    write_json(metrics, folder / METRICS_FILE)
    write_text(model_card(metrics), folder / "README.md")
    load_model(path)  # the saved file must load back through the checks
    STANCE.at(out).promote(version)
    log.info("stance model %s: cv accuracy %.3f by held-out target", version, cv["accuracy"])
    return folder


def model_card(m: dict[str, Any]) -> str:
    """The model card: data, figures, limits, integrity."""
    cv = m["cv_by_target"]
    rows = "\n".join(f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                     for c, v in cv["per_class"].items())
    return f"""# Stance model {m['version']}

Four-way stance of an answer toward a target proposal: `support`, `oppose`, `conditional` (supports it only
under conditions, for some cases, in stages or in a mixed/tiered form), `neutral` (takes no position).
Multinomial logistic regression (`pipeline.stance.model.StanceModel`, C={m['params']['C']}, balanced classes)
over {len(m['features'])} topic-free features (`pipeline.stance.features`): similarities of the {m['params']['top_k']}
answer sentences closest to the target to the target, to a rule-negated target and to four stance anchors;
lexical cue groups (support, opposition, conditions, hedges, failure of the alternative, negation, deferral);
whether the answer affirms or negates the target's side of generic oppositions (mandatory/voluntary,
allow/ban, more/less); and the strongest condition anywhere in the answer (most condition cues in one sentence,
share of sentences with one, the target's side affirmed in a limited sentence), so a tier stated in one clause far
from the target still counts. Sentence vectors: {m['embed']} through `pipeline.embed`.

## Data
`data/training/stance/pairs.csv`: {m['n_pairs']} pairs written by the project team for this model across
{m['n_targets']} proposals (telecom pricing, net neutrality, health, education, environment, taxation, housing,
transport, technology regulation, ...), balanced ({m['class_counts']}); no consultation respondent's text.
Augmented to {m['n_train_rows_after_augmentation']} rows by one seeded copy per pair with 1-4 topic-free or
neutral context sentences around it (`pipeline.stance.train.augment`).

## Cross-validated figures (5 folds, whole targets held out; original pairs only, n={cv['n']})
Accuracy **{cv['accuracy']:.3f}**.

| stance | precision | recall | F1 | n |
|---|---|---|---|---|
{rows}

## Figures on real consultation answers
{real_figures(m['version'])}

## Limits
- Tiered answers that argue for the proposal at length and put the tier in one clause ("mandatory ... for
  high-risk uses") still often come out as `support` (Q20 held-out conditional recall about 0.6); long
  submissions that oppose a proposal only through topic words ("net neutrality", "gatekeepers") can come out
  as `support`.
- English only; trained on short, plainly worded answers. Irony, rhetorical questions and positions stated
  only in an attachment are not understood; a long submission that argues both sides may come out
  `conditional`.
- The target must be a proposal ("X should be Y"). For a choice question ("voluntary or mandated?"), phrase
  one option as the proposal; the stance is toward that option.
- Opposition expressed through topic knowledge only ("we support net neutrality" as opposition to
  differential pricing) is caught only when the wording shares the target's terms or a generic opposition.
- Confidence is the model's probability; below about 0.5 treat the stance as a suggestion to review.

## Integrity
`{MODEL_FILE}` sha256 `{m[HASHES_KEY][MODEL_FILE]}` (also in `metrics.json`; checked on every load, and
the file is loaded by skops with the single trusted type `pipeline.stance.model.StanceModel`).

Reproduce: `python -m pipeline.stance.train` (same data and code give the same version name and the same file,
byte for byte).
"""


BENCH_RESULTS = ROOT / "benchmarks" / "results" / "stance_eval.json"


def real_figures(version: str, path: Path = BENCH_RESULTS) -> str:
    """The headline figures of `benchmarks/stance_eval.py` for this version, when its results name it."""
    try:
        r = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        r = {}
    if version not in str(r.get("model", "")):
        return ("Not measured for this version yet: run `python benchmarks/stance_eval.py`, then this command "
                "again to put its figures here (the model file does not change).")

    def acc(s: dict[str, Any]) -> str:
        lo, hi = s["accuracy_ci"]
        return f"{s['accuracy']:.2f} [{lo:.2f}, {hi:.2f}] (n={s['n']})"

    def rec(s: dict[str, Any]) -> str:
        return ", ".join(f"{c} {v['recall']:.2f}" for c, v in s["per_class"].items() if v["recall"] is not None)

    q, t = r["q20"], r["trai"]
    h1, h2 = q["coder1"]["held_out"], q["coder2"]["held_out"]
    spread = ""
    if "q20_seed_spread" in r:
        sp = r["q20_seed_spread"]
        spread = (f"\n- The same recipe with augmentation seeds {', '.join(str(x['seed']) for x in sp['seeds'])}: "
                  f"held-out accuracy {sp['held_out_min'][0]:.2f}-{sp['held_out_max'][0]:.2f} vs coder 1 (mean "
                  f"{sp['held_out_mean'][0]:.2f}), {sp['held_out_min'][1]:.2f}-{sp['held_out_max'][1]:.2f} vs coder 2 "
                  f"(mean {sp['held_out_mean'][1]:.2f}); differences smaller than that between models are the seed.")
    if "q20_split_protocol" in r:
        chosen = [c["recipe"] + (" with class offsets" if c["calibrated"] else "")
                  for c in (v["chosen"] for v in r["q20_split_protocol"].values())]
        spread += (f"\n- Tuning choices (recipe, class offsets) made on one half and reported on the other: chosen "
                   f"{chosen[0]} on the tuning half, {chosen[1]} on the held-out half (swapped).")
    return (f"From `benchmarks/results/stance_eval.json` (95% bootstrap intervals):\n"
            f"- AU Safe and Responsible AI Q20, held-out half, target \"{r['q20_target']}\": accuracy vs coder 1 "
            f"{acc(h1)}, vs coder 2 {acc(h2)} (coders agree on {q['coder_agreement']:.3f}; majority baseline "
            f"{q['majority_baseline_held_out']:.2f}); recall vs coder 1: {rec(h1)}.\n"
            f"- TRAI differential pricing, 40 submissions labelled by the team (a development set): accuracy "
            f"{acc(t['shipped'])}; recall: {rec(t['shipped'])}. Retrained without the telecom targets: "
            f"{acc(t['without_telecom_targets'])}.\n"
            f"- The issue's target (Q20 accuracy >= 0.75) is "
            f"{'reached' if h1['accuracy'] >= 0.75 and h2['accuracy'] >= 0.75 else 'not reached'} on the held-out "
            f"half.{spread}\nPer-class precision and recall with intervals: `benchmarks/results/stance_eval.md`.")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=MODELS)
    ap.add_argument("--version", default=None)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = train(args.out, args.version, args.data)
    print(folder)


if __name__ == "__main__":
    main()
