"""`wsis train-tagger`: assemble training data, fit a `Tagger`, evaluate it on the held-out split, save a
new model version with its card, and promote it to CURRENT only if it is not worse (unless forced)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import config
from pipeline.errors import InputError
from pipeline.io import read_table, sha256_file, write_json, write_text
from pipeline.tagger import features
from pipeline.tagger.model import HASHES_KEY, ModelFileError, Tagger, load_tagger, save_tagger
from pipeline.tagger.taxonomy import Taxonomy, load_taxonomy, output_code, split_codes

log = logging.getLogger(__name__)

TRAINING_DIR = config.PROJECT_ROOT / "data" / "training"

DEFAULTS: dict[str, Any] = {
    "C": 0.5,
    "prior_weight": 0.5,
    "prototypes": True,
    "keyword_weight": 1.0,
    "keyword_prior": 0.3,
    "keyword_smoothing": 2.0,
    "second_sdg_ratio": 0.5,
    "n_folds": 5,
    "beta_action_lines": 1.0,
    "beta_sdgs": 1.0,
    "top_sdg": True,
    "top_action_line": False,
    "min_score_floor": 0.3,
    "min_words_top": 4,
    "substantive_words": 15,
    "substantive_floor": 0.05,
    "weak_label_batches": [],
    "weak_label_max": 2000,
    "n_nearest_examples": 3,
}


def tag_params(params: dict[str, Any]) -> dict[str, Any]:
    """The `tag` section with defaults filled in, plus the global seed."""
    section = config.stage_params(params, "tag")
    return {**DEFAULTS, **section}


# --- model folders ----------------------------------------------------------------------------------

def tagger_root(models_root: Path | None = None) -> Path:
    return Path(models_root) / "tagger" if models_root else config.models_dir() / "tagger"


def current_version(root: Path) -> str | None:
    f = root / "CURRENT"
    if not f.exists():
        return None
    version = f.read_text(encoding="utf-8").strip()
    return version or None


def resolve_model_dir(params: dict[str, Any], model_dir: Path | None = None) -> Path:
    """A version folder: `model_dir` (a version folder, or a root with CURRENT), else params' version."""
    if model_dir is not None:
        model_dir = Path(model_dir)
        if (model_dir / "tagger.skops").exists():
            return model_dir
        for root in (model_dir, model_dir / "tagger"):
            version = current_version(root)
            if version:
                return root / version
        raise ModelFileError(model_dir, "no tagger model here (no tagger.skops, no CURRENT version)")
    root = tagger_root()
    version = str(tag_params(params).get("model_version", "current") or "current")
    if version == "current":
        cur = current_version(root)
        if cur is None:
            raise ModelFileError(root / "CURRENT", "no current tagger model; run `wsis train-tagger` first")
        version = cur
    folder = root / version
    if not (folder / "tagger.skops").exists():
        raise ModelFileError(folder / "tagger.skops", f"tagger model {version} not found")
    return folder


def load_model(params: dict[str, Any], model_dir: Path | None = None) -> tuple[Tagger, Path]:
    folder = resolve_model_dir(params, model_dir)
    return load_tagger(folder / "tagger.skops"), folder


def encoder_params(params: dict[str, Any], tagger: Tagger) -> dict[str, Any]:
    """Params whose `embed` section encodes texts in the space the tagger was trained in: the same model;
    torch and onnx (int8 export, cosine >= 0.985) are interchangeable, any other backend is replaced."""
    model = getattr(tagger, "embed_model_", None)
    if model is None:
        return params
    embed = dict(params.get("embed", {}) or {})
    backend = str(embed.get("backend", "torch"))
    trained = str(getattr(tagger, "embed_backend_", "torch"))
    same_space = backend == trained or {backend, trained} <= {"torch", "onnx"}
    if embed.get("model") == model and same_space:
        return params
    log.warning("embedding with %s:%s (the tagger's training space) instead of %s:%s",
                trained, model, backend, embed.get("model"))
    return config.deep_merge(params, {"embed": {"model": model, "backend": trained}})


# --- training data -----------------------------------------------------------------------------------

@dataclass
class LabelledSet:
    """Texts with label ids, their provenance and split (train | heldout)."""

    frame: pd.DataFrame  # columns: id, text, labels (list[str]), source, split

    def matrix(self, label_ids: list[str]) -> np.ndarray:
        index = {lab: j for j, lab in enumerate(label_ids)}
        Y = np.zeros((len(self.frame), len(label_ids)), dtype=np.int64)
        for i, labs in enumerate(self.frame["labels"]):
            for lab in labs:
                if lab in index:
                    Y[i, index[lab]] = 1
        return Y


def _labels_of(row: pd.Series) -> list[str]:
    return split_codes(row.get("action_lines", ""), "action_line") + split_codes(
        row.get("sdgs", ""), "sdg"
    )


def load_handwritten(folder: Path | None = None) -> pd.DataFrame:
    """All `data/training/*.csv` (id, text, action_lines, sdgs, register, split)."""
    folder = Path(folder) if folder else TRAINING_DIR
    frames = []
    for f in sorted(folder.glob("*.csv")):
        df = read_table(f)
        missing = {"id", "text"} - set(df.columns)
        if missing:
            log.warning("%s: missing columns %s; skipped", f, sorted(missing))
            continue
        df = df.assign(source=f"handwritten:{f.name}")
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["id", "text", "labels", "source", "split"])
    df = pd.concat(frames, ignore_index=True)
    df = df[df["text"].astype(str).str.strip() != ""].drop_duplicates("id", keep="first")
    split = df.get("split", pd.Series("train", index=df.index)).astype(str).str.strip().str.lower()
    return pd.DataFrame({
        "id": df["id"].astype(str).to_numpy(),
        "text": df["text"].astype(str).to_numpy(),
        "labels": [_labels_of(r) for _, r in df.iterrows()],
        "source": df["source"].to_numpy(),
        "split": np.where(split == "heldout", "heldout", "train"),
    })


def _unneutralise(value: Any) -> str:
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@":
        return text[1:]
    return text


def load_label_file(path: Path) -> pd.DataFrame:
    """An analyst label file (the label sheet, or any CSV/XLSX with text + action_lines/sdgs columns)."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), None, "label file not found")
    df = read_table(path)
    cols = {c.lower().strip(): c for c in df.columns}
    text_col = next((cols[c] for c in ("text", "text_clean", "answer") if c in cols), None)
    if text_col is None or not ({"action_lines", "sdgs"} & set(cols)):
        raise InputError(str(path), None, "needs a text column and action_lines and/or sdgs columns")
    id_col = next((cols[c] for c in ("answer_id", "id") if c in cols), None)
    rows = []
    for i, row in df.iterrows():
        text = _unneutralise(row[text_col]).strip()
        if not text:
            continue
        rid = _unneutralise(row[id_col]) if id_col else f"row{i}"
        labels = split_codes(_unneutralise(row.get(cols.get("action_lines", ""), "")), "action_line")
        labels += split_codes(_unneutralise(row.get(cols.get("sdgs", ""), "")), "sdg")
        rows.append({"id": f"label:{path.name}:{rid}", "text": text, "labels": labels,
                     "source": f"analyst:{path.name}", "split": "train"})
    return pd.DataFrame(rows, columns=["id", "text", "labels", "source", "split"])


def load_weak_labels(batch_dirs: list[Path], limit: int) -> pd.DataFrame:
    """Weak labels: answers of processed batches whose explicit mentions name Action Lines / SDGs."""
    rows: list[dict[str, Any]] = []
    for batch in batch_dirs:
        f = Path(batch) / "answers_clean.parquet"
        if not f.exists():
            log.warning("weak labels: %s missing; skipped", f)
            continue
        df = pd.read_parquet(f)
        for _, r in df.iterrows():
            if bool(r.get("is_nonanswer", False)):
                continue
            labels = split_codes(r.get("mentions_action_lines", []), "action_line") + split_codes(
                r.get("mentions_sdgs", []), "sdg"
            )
            text = str(r.get("text_clean", "") or r.get("answer", ""))
            if labels and text.strip():
                rows.append({"id": f"weak:{r.get('answer_id', len(rows))}", "text": text,
                             "labels": labels, "source": f"weak:{Path(batch).name}", "split": "train"})
            if len(rows) >= limit:
                break
    return pd.DataFrame(rows, columns=["id", "text", "labels", "source", "split"])


def assemble(
    label_files: list[Path], section: dict[str, Any], training_dir: Path | None = None
) -> LabelledSet:
    parts = [load_handwritten(training_dir)]
    parts += [load_label_file(Path(f)) for f in label_files if not Path(f).is_dir()]
    # a batch folder given as a label source contributes weak labels from its explicit mentions
    weak = [Path(b) for b in section.get("weak_label_batches") or []]
    weak += [Path(f) for f in label_files if Path(f).is_dir()]
    if weak:
        parts.append(load_weak_labels(weak, int(section.get("weak_label_max", 2000))))
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
    if frame.empty:
        raise InputError(str(training_dir or TRAINING_DIR), None, "no training examples found")
    return LabelledSet(frame)


# --- evaluation ------------------------------------------------------------------------------------

def evaluate_predictions(Y: np.ndarray, P: np.ndarray, label_ids: list[str]) -> dict[str, Any]:
    """Per-label P/R/F1 and micro/macro averages overall, for Action Lines and for SDGs; plus the
    OSDG-style score (mean over SDGs of the share of its examples where it is predicted)."""
    per: dict[str, dict[str, float]] = {}
    for j, lab in enumerate(label_ids):
        tp = int(((P[:, j] == 1) & (Y[:, j] == 1)).sum())
        fp = int(((P[:, j] == 1) & (Y[:, j] == 0)).sum())
        fn = int(((P[:, j] == 0) & (Y[:, j] == 1)).sum())
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[lab] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
                    "support": int(Y[:, j].sum()), "tp": tp, "fp": fp, "fn": fn}

    def summary(labs: list[str]) -> dict[str, float]:
        tp = sum(per[x]["tp"] for x in labs)
        fp = sum(per[x]["fp"] for x in labs)
        fn = sum(per[x]["fn"] for x in labs)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        supported = [x for x in labs if per[x]["support"] > 0]
        return {
            "micro_precision": round(prec, 4), "micro_recall": round(rec, 4),
            "micro_f1": round(2 * prec * rec / (prec + rec), 4) if prec + rec else 0.0,
            "macro_f1": round(float(np.mean([per[x]["f1"] for x in supported])), 4) if supported else 0.0,
            "labels_with_support": len(supported),
        }

    als = [x for x in label_ids if not x.startswith("SDG")]
    sdgs = [x for x in label_ids if x.startswith("SDG")]
    sdg_recalls = [per[x]["recall"] for x in sdgs if per[x]["support"] > 0]
    return {
        "n": int(len(Y)),
        "all": summary(label_ids), "action_lines": summary(als), "sdgs": summary(sdgs),
        "sdg_named_accuracy": round(float(np.mean(sdg_recalls)), 4) if sdg_recalls else None,
        "per_label": per,
    }


# --- training ----------------------------------------------------------------------------------------

def label_vectors(taxonomy: Taxonomy, params: dict[str, Any]) -> np.ndarray:
    return features.encode([lab.prototype_text for lab in taxonomy.labels], params, config.cache_dir())


def prototypes(taxonomy: Taxonomy) -> tuple[list[str], list[int]]:
    """Short texts describing one aspect of a label each: title, description sentences, keyword groups."""
    texts: list[str] = []
    owner: list[int] = []
    for j, lab in enumerate(taxonomy.labels):
        items = [lab.title] + [s.strip() for s in re.split(r"(?<=[.;])\s+", lab.description) if s.strip()]
        kws = list(lab.keywords)
        items += [", ".join(kws[k : k + 6]) for k in range(0, len(kws), 6)]
        texts += items
        owner += [j] * len(items)
    return texts, owner


def build_tagger(
    taxonomy: Taxonomy, vectors: np.ndarray, section: dict[str, Any],
    proto: tuple[np.ndarray, list[int]] | None = None,
) -> Tagger:
    lex = features.KeywordLexicon.from_taxonomy(taxonomy)
    return Tagger(
        label_ids=taxonomy.ids, label_kinds=[lab.kind for lab in taxonomy.labels],
        label_vectors=vectors.astype(np.float32), keywords=lex.keywords,
        C=float(section["C"]), prior_weight=float(section["prior_weight"]),
        n_folds=int(section["n_folds"]), seed=int(section["seed"]),
        beta_action_lines=float(section["beta_action_lines"]), beta_sdgs=float(section["beta_sdgs"]),
        top_sdg=bool(section["top_sdg"]), top_action_line=bool(section["top_action_line"]),
        min_score_floor=float(section["min_score_floor"]),
        keyword_weight=float(section["keyword_weight"]), keyword_prior=float(section["keyword_prior"]),
        keyword_smoothing=float(section["keyword_smoothing"]),
        second_sdg_ratio=float(section["second_sdg_ratio"]),
        prototype_vectors=proto[0].astype(np.float16) if proto is not None else None,
        prototype_owner=list(proto[1]) if proto is not None else None,
    )


def fit_on(
    data: LabelledSet, params: dict[str, Any], taxonomy: Taxonomy | None = None
) -> tuple[Tagger, dict[str, Any]]:
    """Fit a tagger on the train split; return it with held-out metrics (pure: no files written)."""
    section = tag_params(params)
    taxonomy = taxonomy or load_taxonomy()
    frame = data.frame
    train = frame[frame["split"] == "train"].reset_index(drop=True)
    held = frame[frame["split"] == "heldout"].reset_index(drop=True)
    ids = taxonomy.ids
    vectors = label_vectors(taxonomy, params)
    proto = None
    if section.get("prototypes", True):
        proto_texts, proto_owner = prototypes(taxonomy)
        proto = (features.encode(proto_texts, params, config.cache_dir()), proto_owner)
    t0 = time.perf_counter()
    E_train = features.encode(train["text"].tolist(), params, config.cache_dir())
    t_embed = time.perf_counter() - t0
    Y_train = LabelledSet(train).matrix(ids)
    t1 = time.perf_counter()
    tagger = build_tagger(taxonomy, vectors, section, proto).fit(train["text"].tolist(), Y_train, E_train)
    t_fit = time.perf_counter() - t1
    hand = train["source"].astype(str).str.startswith("handwritten").to_numpy()
    embed = params.get("embed", {}) or {}
    tagger.embed_model_ = str(embed.get("model", "all-MiniLM-L6-v2"))
    tagger.embed_backend_ = str(embed.get("backend", "torch"))
    tagger.examples_text_ = train.loc[hand, "text"].tolist()
    tagger.examples_labels_ = [";".join(output_code(x) for x in labs) for labs in train.loc[hand, "labels"]]
    tagger.examples_vectors_ = np.round(E_train[hand] * 127).astype(np.int8)  # cosine order kept
    info: dict[str, Any] = {
        "n_train": int(len(train)), "n_heldout": int(len(held)),
        "train_sources": train["source"].str.split(":").str[0].value_counts().to_dict(),
        "embed_seconds": round(t_embed, 2), "fit_seconds": round(t_fit, 2),
        "cv_f1_per_label": {lab: (None if np.isnan(v) else round(float(v), 4))
                            for lab, v in zip(ids, tagger.cv_f1_, strict=True)},
        "thresholds": {lab: round(float(t), 3) for lab, t in zip(ids, tagger.thresholds_, strict=True)},
    }
    if len(held):
        info["heldout"] = heldout_metrics(tagger, held, params)
    return tagger, info


def heldout_metrics(tagger: Tagger, held: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Metrics of the tagger used exactly as `wsis tag --input` uses it (sentence passages, mentions)."""
    from pipeline.tagger.stage import tag_adhoc_frame

    ids = list(tagger.label_ids)
    out, _ = tag_adhoc_frame(tagger, pd.DataFrame({"id": held["id"], "text": held["text"]}), params)
    pred = LabelledSet(pd.DataFrame({"labels": [
        split_codes(a, "action_line") + split_codes(s, "sdg")
        for a, s in zip(out["action_lines"], out["sdgs"], strict=True)
    ]})).matrix(ids)
    return evaluate_predictions(LabelledSet(held).matrix(ids), pred, ids)


def model_file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of each model file of a version folder, recorded in metrics.json and the card;
    `load_tagger` refuses a file that no longer matches."""
    return {f.name: sha256_file(f) for f in sorted(Path(folder).glob("*.skops"))}


def _new_version(root: Path) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("v%Y%m%dT%H%M%SZ")
    version, k = stamp, 1
    while (root / version).exists():
        k += 1
        version = f"{stamp}-{k}"
    return version


def run(
    label_files: list[Path], params: dict[str, Any], models_root: Path | None = None,
    force: bool = False, training_dir: Path | None = None,
) -> dict[str, Any]:
    """Train, evaluate on the held-out split, save `models/tagger/<version>/`, maybe promote to CURRENT."""
    t0 = time.perf_counter()
    section = tag_params(params)
    taxonomy = load_taxonomy()
    data = assemble([Path(f) for f in label_files], section, training_dir)
    tagger, info = fit_on(data, params, taxonomy)
    root = tagger_root(models_root)
    held = data.frame[data.frame["split"] == "heldout"].reset_index(drop=True)

    before: dict[str, Any] | None = None
    cur = current_version(root)
    if cur and (root / cur / "tagger.skops").exists() and len(held):
        try:
            before = heldout_metrics(load_tagger(root / cur / "tagger.skops"), held, params)
        except Exception as exc:  # an unreadable old model must not block retraining
            log.warning("could not evaluate current model %s: %s", cur, exc)

    after = info.get("heldout")
    new_f1 = after["all"]["micro_f1"] if after else 0.0
    old_f1 = before["all"]["micro_f1"] if before else None
    promote = force or old_f1 is None or new_f1 >= old_f1
    version = _new_version(root)
    folder = root / version
    folder.mkdir(parents=True, exist_ok=True)
    save_tagger(tagger, folder / "tagger.skops")

    data_files = sorted((training_dir or TRAINING_DIR).glob("*.csv")) + [Path(f) for f in label_files]
    hashes = {str(_rel(f)): sha256_file(f) for f in data_files if Path(f).exists()}
    hashes.update({str(_rel(Path(f))): sha256_file(f) for f in taxonomy.source_files})
    metrics = {
        "version": version, "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "params": {k: v for k, v in section.items() if k != "model_version"},
        "data": {"files_sha256": hashes, **{k: info[k] for k in ("n_train", "n_heldout", "train_sources")}},
        "timings": {"embed_seconds": info["embed_seconds"], "fit_seconds": info["fit_seconds"],
                    "total_seconds": round(time.perf_counter() - t0, 2)},
        "thresholds": info["thresholds"], "cv_f1_per_label": info["cv_f1_per_label"],
        "heldout": after, "before": {"version": cur, "heldout": before},
        "promoted": bool(promote), "forced": bool(force),
        HASHES_KEY: model_file_hashes(folder),
    }
    write_json(metrics, folder / "metrics.json")
    write_text(model_card(metrics, taxonomy), folder / "README.md")
    if promote:
        write_text(version + "\n", root / "CURRENT")
        log.info("tagger %s is now CURRENT", version)
    else:
        log.warning("tagger %s scores worse on held-out (micro-F1 %.3f < %.3f): CURRENT stays %s "
                    "(use --force to replace it)", version, new_f1, old_f1, cur)
    return {
        "version": version, "model_dir": str(folder), "promoted": bool(promote),
        "current": version if promote else cur, "n_train": info["n_train"], "n_heldout": info["n_heldout"],
        "heldout_micro_f1": new_f1, "before_micro_f1": old_f1,
        "heldout_action_lines_micro_f1": after["action_lines"]["micro_f1"] if after else None,
        "heldout_sdgs_micro_f1": after["sdgs"]["micro_f1"] if after else None,
        "heldout_sdg_named_accuracy": after["sdg_named_accuracy"] if after else None,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _rel(path: Path) -> Path:
    try:
        return Path(path).resolve().relative_to(config.PROJECT_ROOT)
    except ValueError:
        return Path(Path(path).name)


def _fmt(metrics: dict[str, Any] | None, group: str, key: str) -> str:
    if not metrics:
        return "-"
    value = metrics[group][key] if group else metrics.get(key)
    return "-" if value is None else f"{value:.3f}"


def model_card(m: dict[str, Any], taxonomy: Taxonomy) -> str:
    """The model card (README.md of a version folder)."""
    after, before = m["heldout"], m["before"]["heldout"]
    lines = [
        f"# WSIS Action Line / SDG tagger {m['version']}", "",
        f"Created {m['created_utc']}. Promoted to CURRENT: **{m['promoted']}**"
        + (" (forced)" if m["forced"] else "") + ".", "",
        "## What it is",
        "Per label, a logistic regression over all-MiniLM-L6-v2 sentence embeddings, the similarity to "
        "every label description (whole, and best of its sentences / keyword groups) and keyword-lexicon "
        "hits (taxonomy files), blended with a zero-shot prior "
        f"shared by all labels (weight {m['params'].get('prior_weight')}), Platt-calibrated on out-of-fold "
        "scores, then combined (noisy-or) with keyword evidence whose reliability P(label | keyword) is "
        f"estimated on the training texts (weight {m['params'].get('keyword_weight')}). One threshold per "
        "label is chosen by multi-label stratified cross-validation. The top SDG is always predicted for "
        f"texts of {m['params'].get('substantive_words')}+ words (shorter ones: when it scores "
        f"{m['params'].get('min_score_floor')}+), and the runner-up SDG when it scores at "
        f"least {m['params'].get('second_sdg_ratio')} x the top; explicit mentions are added by the tag "
        "stage; long answers are scored per segment (max).",
        "Load only with `pipeline.tagger.model.load_tagger` (skops, explicit trusted-type list; it refuses a "
        "file whose sha256 differs from the one recorded below and in metrics.json).", "",
        "## Model files (sha256)",
    ]
    lines += [f"- `{f}` `{h}`" for f, h in (m.get(HASHES_KEY) or {}).items()]
    lines += [
        "",
        "## Data",
        f"- training examples: {m['data']['n_train']} ({m['data']['train_sources']}); "
        f"held-out examples (never trained on): {m['data']['n_heldout']}",
        "- files (sha256):",
    ]
    lines += [f"  - `{f}` `{h}`" for f, h in m["data"]["files_sha256"].items()]
    lines += ["", "## Parameters", "```json", json.dumps(m["params"], indent=2, default=str), "```", "",
              "## Held-out metrics (before = CURRENT model at training time, on the same split)", "",
              "| metric | before | after |", "|---|---|---|"]
    for group, label in (("all", "all labels"), ("action_lines", "Action Lines"), ("sdgs", "SDGs")):
        for key in ("micro_precision", "micro_recall", "micro_f1", "macro_f1"):
            lines.append(f"| {label} {key} | {_fmt(before, group, key)} | {_fmt(after, group, key)} |")
    lines.append(f"| SDG named-goal accuracy | {_fmt(before, '', 'sdg_named_accuracy')} | "
                 f"{_fmt(after, '', 'sdg_named_accuracy')} |")
    lines += ["", f"Before: version {m['before']['version'] or '(none: no earlier model)'}.", "",
              "## Per label (held-out)", "", "| label | title | P | R | F1 | support | threshold |",
              "|---|---|---|---|---|---|---|"]
    if after:
        for lab in taxonomy.labels:
            p = after["per_label"].get(lab.id, {})
            lines.append(f"| {lab.code if lab.kind == 'action_line' else 'SDG ' + lab.code} | {lab.title} | "
                         f"{p.get('precision', 0):.2f} | {p.get('recall', 0):.2f} | {p.get('f1', 0):.2f} | "
                         f"{p.get('support', 0)} | {m['thresholds'].get(lab.id, 0):.3f} |")
    lines += ["", "## Timings", f"{m['timings']}", "", "## Known limits",
              "- Trained mostly on short hand-written English texts; real answers are longer and vaguer, "
              "so scores on them are less well calibrated (long answers are tagged per segment).",
              "- English only: other languages get embedding-based scores without keyword evidence.",
              "- The held-out split is small (a few examples per label): per-label metrics are noisy.",
              "- The WSIS-SDG matrix used by the consistency report is a secondary transcription.", ""]
    return "\n".join(lines)
