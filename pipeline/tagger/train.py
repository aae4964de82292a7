"""`wsis train-tagger`: assemble training data, fit a `Tagger`, evaluate it, save a new model version with its
card, and promote it to CURRENT only if it proves better (unless forced).

Analyst labels (label sheets, CSV/XLSX) are split by a hash of their id (or text) into training rows and a
real-answer validation part that is never trained on; the CURRENT and the new model tag that part with the
decision rules of params.yaml, and a paired bootstrap over its answers decides: the new version replaces
CURRENT only when the 95% CI of its gain (mean of Action Line and SDG micro-F1) lies above 0. Without enough
analyst labels, the written examples' held-out split is the comparison set, under the same rule."""

from __future__ import annotations

import datetime as dt
import hashlib
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
from pipeline.errors import InputError, ModelFileError
from pipeline.io import read_table, sha256_file, write_json, write_text
from pipeline.numeric import logit, sigmoid
from pipeline.registry import HASHES_KEY, TAGGER, verify_hash
from pipeline.tagger import features
from pipeline.tagger.model import Tagger, load_tagger, save_tagger
from pipeline.tagger.realhead import FILE_NAME as HEAD_FILE
from pipeline.tagger.realhead import RealAnswerHead, load_head, save_head
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
    "analyst_weight": 3.0,
    "analyst_validation_share": 0.0,
    "analyst_validation_min": 20,
    "compare_n_boot": 1000,
    "threshold_shift_min": 30,
    "threshold_shift_folds": 3,
    "real_head": True,
    "real_head_min": 40,
    "real_head_C": 0.3,
    "real_head_vector_C": 4.0,
    "real_head_min_positives": 2.0,
    "real_head_cv_folds": 5,
}


def tag_params(params: dict[str, Any]) -> dict[str, Any]:
    """The `tag` section with defaults filled in, plus the global seed."""
    section = config.stage_params(params, "tag")
    return {**DEFAULTS, **section}


# --- model folders ----------------------------------------------------------------------------------

def tagger_root(models_root: Path | None = None) -> Path:
    """The tagger's folder (version folders + CURRENT) of a models folder; a tagger folder itself is
    accepted too (one holding CURRENT, or named `tagger`)."""
    if not models_root:
        return TAGGER.root
    root = Path(models_root)
    if root.name == "tagger" or ((root / "CURRENT").is_file() and not (root / "tagger").is_dir()):
        return root
    return root / "tagger"


def current_version(root: Path) -> str | None:
    """The version the CURRENT of a tagger folder names (the registry's rule)."""
    return TAGGER.at(root).current()


def resolve_model_dir(params: dict[str, Any], model_dir: Path | None = None) -> Path:
    """A version folder: `model_dir` (a version folder, or a root with CURRENT), else params' version."""
    if model_dir is not None:
        model_dir = Path(model_dir)
        if (model_dir / TAGGER.file_name).exists():
            return model_dir
        for root in (model_dir, model_dir / "tagger"):
            version = current_version(root)
            if version:
                return root / version
        raise ModelFileError(model_dir, "no tagger model here (no tagger.skops, no CURRENT version)")
    version = str(tag_params(params).get("model_version", "current") or "current")
    if version == "current" and TAGGER.current() is None:
        raise ModelFileError(TAGGER.root / "CURRENT", "no current tagger model; run `wsis train-tagger` first")
    return TAGGER.resolve(version)


def load_model(params: dict[str, Any], model_dir: Path | None = None) -> tuple[Tagger, Path]:
    folder = resolve_model_dir(params, model_dir)
    return load_tagger(folder / TAGGER.file_name), folder


def load_real_head(folder: Path, tagger: Tagger, section: dict[str, Any] | None = None) -> RealAnswerHead | None:
    """The version's real-answer head (`real_head.npz`), None when it has none or `tag.real_head` is off; a
    file whose sha256 differs from the one metrics.json records is refused (`ModelFileError`)."""
    if section is not None and not bool(section.get("real_head", True)):
        return None
    path = Path(folder) / HEAD_FILE
    if not path.is_file():
        return None
    verify_hash(path)  # the registry's check, as for the skops model
    try:
        return load_head(path, len(tagger.label_ids))
    except (ValueError, KeyError, OSError) as exc:
        raise ModelFileError(path, f"not a real-answer head for this tagger ({exc})") from None


def interchangeable(backend: str, trained: str) -> bool:
    """Whether vectors of `backend` live in the space of a tagger trained on `trained` vectors of the same model:
    the same backend, or torch and its int8 ONNX export (checked against torch at cosine >= embed.onnx_min_cosine)."""
    return backend == trained or {backend, trained} <= {"torch", "onnx"}


def encoder_params(params: dict[str, Any], tagger: Tagger) -> dict[str, Any]:
    """Params whose `embed` section encodes texts in the space the tagger was trained in: the same model;
    torch and onnx (int8 export, cosine >= 0.985) are interchangeable, any other backend is replaced."""
    model = getattr(tagger, "embed_model_", None)
    if model is None:
        return params
    from pipeline.embed.backends import backend_name

    embed = dict(params.get("embed", {}) or {})
    backend = backend_name(embed)  # `auto` outside a batch: its English encoder
    trained = str(getattr(tagger, "embed_backend_", "torch"))
    if embed.get("model") == model and interchangeable(backend, trained):
        return params
    log.warning("embedding with %s:%s (the tagger's training space) instead of %s:%s",
                trained, model, backend, embed.get("model"))
    return config.deep_merge(params, {"embed": {"model": model, "backend": trained}})


# --- training data -----------------------------------------------------------------------------------

@dataclass
class LabelledSet:
    """Texts with label ids, their provenance, split (train | heldout: written examples never trained on |
    validation: analyst labels never trained on) and training weight."""

    frame: pd.DataFrame  # columns: id, text, labels (list[str]), source, split[, weight]

    def weights(self) -> np.ndarray:
        if "weight" not in self.frame:
            return np.ones(len(self.frame))
        return self.frame["weight"].astype(float).fillna(1.0).to_numpy()

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


_SDG_CODE = re.compile(r"^(?:sdg|goal)?\s*[-_ ]?\s*(\d{1,2})(?:\.0)?$", re.IGNORECASE)


def strict_codes(value: str, kind: str, path: Path, record: str) -> list[str]:
    """Codes of a label cell; an unknown code is an `InputError` naming the file and row (an analyst's typo
    must not silently become 'no label')."""
    from pipeline.tagger.taxonomy import action_line_id

    out: list[str] = []
    for part in re.split(r"[;,|\n]+", value):
        part = part.strip().strip("'\"")
        if not part:
            continue
        try:
            if kind == "sdg":
                m = _SDG_CODE.match(part)
                if not m or not 1 <= int(m.group(1)) <= 17:
                    raise ValueError(part)
                lid = f"SDG{int(m.group(1))}"
            else:
                lid = action_line_id(part)
        except ValueError:
            what = "SDG (1..17)" if kind == "sdg" else "Action Line (C1..C11, C7.e-health ...)"
            raise InputError(str(path), record, f"unknown {what} code {part!r}") from None
        if lid not in out:
            out.append(lid)
    return out


def load_label_file(path: Path, section: dict[str, Any] | None = None) -> pd.DataFrame:
    """An analyst label file: the label sheet of `wsis label-sheet`, or any CSV/XLSX with a `text` column
    (optionally `id` / `answer_id`) and `action_lines` and/or `sdgs`. Rows are split into training and
    validation by a hash of their id (or text when there is no id column); analyst rows weigh
    `analyst_weight`. Rows with an empty text are skipped (deleted answers); empty label cells mean "none"."""
    path = Path(path)
    section = {**DEFAULTS, **(section or {})}
    if not path.exists():
        raise InputError(str(path), None, "label file not found")
    try:
        df = read_table(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the user's file, shown in one line
        raise InputError(str(path), None, f"cannot read the label file: {' '.join(str(exc).split())[:200]}") from None
    cols = {str(c).lower().strip(): c for c in df.columns}
    text_col = next((cols[c] for c in ("text", "text_clean", "answer") if c in cols), None)
    label_cols = {"action_lines", "sdgs"} & set(cols)
    if text_col is None or not label_cols:
        missing = (["text"] if text_col is None else []) + ([] if label_cols else ["action_lines and/or sdgs"])
        raise InputError(str(path), None, f"missing column(s) {', '.join(missing)} (found: "
                         f"{', '.join(map(str, df.columns)) or 'none'})")
    id_col = next((cols[c] for c in ("answer_id", "id") if c in cols), None)
    share = float(section["analyst_validation_share"])
    weight = float(section["analyst_weight"])
    rows = []
    seen: set[str] = set()
    for k, (_, row) in enumerate(df.iterrows()):
        record = f"row {k + 2}"  # the header is row 1, in the CSV and in the sheet
        text = _unneutralise(row[text_col]).strip()
        if not text:
            continue
        rid = _unneutralise(row[id_col]).strip() if id_col else ""
        key = rid or text
        if key in seen:
            raise InputError(str(path), record, f"duplicate {'id ' + repr(rid) if rid else 'text'}")
        seen.add(key)
        labels = strict_codes(_unneutralise(row[cols["action_lines"]]) if "action_lines" in cols else "",
                              "action_line", path, record)
        labels += strict_codes(_unneutralise(row[cols["sdgs"]]) if "sdgs" in cols else "", "sdg", path, record)
        rows.append({"id": f"label:{path.name}:{rid or f'row{k + 2}'}", "text": text, "labels": labels,
                     "source": f"analyst:{path.name}",
                     "split": "validation" if in_validation(key, share) else "train", "weight": weight})
    return pd.DataFrame(rows, columns=["id", "text", "labels", "source", "split", "weight"])


def in_validation(key: str, share: float) -> bool:
    """Deterministic hash split of analyst labels: the same answer is always on the same side, whichever
    file or run it comes from, so the validation part is never trained on by a later version either."""
    if share <= 0:
        return False
    h = int(hashlib.sha1(("tag-validation:" + key).encode("utf-8")).hexdigest()[:15], 16) / 16**15
    return h < share


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
    parts += [load_label_file(Path(f), section) for f in label_files if not Path(f).is_dir()]
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
    """Fit a tagger on the train split; return it with the written held-out metrics (pure: no files written).
    Validation rows (analyst labels) are never fitted.

    With at least `real_head_min` analyst training answers (and `real_head` on), the tagger learns from the
    written examples and a `RealAnswerHead` learns from the analyst answers on top of the tagger's margins
    (`info["head"]`; measured: benchmarks/results/tags_real_answers.json `real_answer_head`); else analyst rows
    join the tagger's training at `analyst_weight` x a written example, with the per-kind threshold shift."""
    section = tag_params(params)
    taxonomy = taxonomy or load_taxonomy()
    frame = data.frame
    train = frame[frame["split"] == "train"].reset_index(drop=True)
    is_analyst = train["source"].astype(str).str.startswith("analyst").to_numpy()
    use_head = bool(section["real_head"]) and int(is_analyst.sum()) >= max(int(section["real_head_min"]), 2)
    real = train[is_analyst].reset_index(drop=True)
    if use_head:
        train = train[~is_analyst].reset_index(drop=True)
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
    weights = LabelledSet(train).weights()
    sample_weight = None if np.all(weights == 1.0) else weights
    tagger = build_tagger(taxonomy, vectors, section, proto).fit(
        train["text"].tolist(), Y_train, E_train, sample_weight=sample_weight)
    analyst = train["source"].astype(str).str.startswith("analyst").to_numpy()
    shift, shift_info = real_answer_shift(
        lambda: build_tagger(taxonomy, vectors, section, proto), train["text"].tolist(), Y_train, E_train,
        sample_weight, analyst, params)
    if np.any(shift != 0):
        kinds = np.asarray(list(tagger.label_kinds))
        delta = np.where(kinds == "sdg", shift[1], shift[0])
        tagger.thresholds_ = sigmoid(logit(tagger.thresholds_) + delta)
    tagger.threshold_shift_ = shift
    embed = params.get("embed", {}) or {}
    tagger.embed_model_ = str(embed.get("model", "all-MiniLM-L6-v2"))
    from pipeline.embed.backends import backend_name

    tagger.embed_backend_ = backend_name(embed)  # the resolved space (auto outside a batch: its English encoder)
    head, head_info = fit_real_head(tagger, real, params) if use_head else (None, {"applied": False})
    t_fit = time.perf_counter() - t1
    hand = train["source"].astype(str).str.startswith("handwritten").to_numpy()
    tagger.examples_text_ = train.loc[hand, "text"].tolist()
    tagger.examples_labels_ = [";".join(output_code(x) for x in labs) for labs in train.loc[hand, "labels"]]
    tagger.examples_vectors_ = np.round(E_train[hand] * 127).astype(np.int8)  # cosine order kept
    info: dict[str, Any] = {
        "n_train": int(len(train)), "n_heldout": int(len(held)),
        "n_validation": int((frame["split"] == "validation").sum()),
        "train_sources": train["source"].str.split(":").str[0].value_counts().to_dict(),
        "embed_seconds": round(t_embed, 2), "fit_seconds": round(t_fit, 2),
        "cv_f1_per_label": {lab: (None if np.isnan(v) else round(float(v), 4))
                            for lab, v in zip(ids, tagger.cv_f1_, strict=True)},
        "thresholds": {lab: round(float(t), 3) for lab, t in zip(ids, tagger.thresholds_, strict=True)},
        "threshold_shift": shift_info, "real_head": head_info, "head": head,
    }
    if len(held):
        info["heldout"] = heldout_metrics(tagger, held, params, head=head)
    return tagger, info


def cross_fitted_rows(tagger: Tagger, real: pd.DataFrame, params: dict[str, Any], folds: int) -> list[list[str]]:
    """Label ids of analyst training rows, each tagged with a real-answer head fitted on the OTHER folds
    (folds by a hash of the text, so one answer labelled by several analysts stays in one fold): with
    cross-fitting every analyst answer validates the new version while all of them train its head."""
    keys = real["text"].astype(str).tolist()
    fold = np.array([int(hashlib.sha1(("tag-cv:" + k).encode("utf-8")).hexdigest()[:8], 16) % folds for k in keys])
    out: list[list[str]] = [[] for _ in keys]
    for f in range(folds):
        test = fold == f
        if not test.any() or (~test).sum() < 2:
            continue
        head, _ = fit_real_head(tagger, real[~test].reset_index(drop=True), params)
        rows = predict_rows(tagger, real[test].reset_index(drop=True), params, head)
        for i, r in zip(np.flatnonzero(test), rows, strict=True):
            out[i] = r
    return out


def real_answer_inputs(
    tagger: Tagger, texts: list[str], params: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(base margins, whole-text vectors, words per text, passages per text) of texts scored as `wsis tag
    --input` scores them: what the real-answer head learns from."""
    from pipeline.tagger import stage

    section = tag_params(params)
    skip = np.array([not t.strip() for t in texts])
    seg, owners = stage.sentence_passages(texts, int(section.get("sentence_max_words", 20)), skip)
    vecs = features.encode(texts + seg, encoder_params(params, tagger), config.cache_dir())
    proba = tagger.predict_proba(texts, vecs[: len(texts)])
    seg_proba = tagger.predict_proba(seg, vecs[len(texts):]) if seg else np.zeros((0, proba.shape[1]))
    rules = stage.DecisionRules.from_params(section)
    _, margin, n_pass = stage.blended_margins(tagger, proba, seg_proba, np.asarray(owners, dtype=np.int64), rules)
    return margin, vecs[: len(texts)], np.array([len(t.split()) for t in texts]), n_pass


def fit_real_head(
    tagger: Tagger, real: pd.DataFrame, params: dict[str, Any],
) -> tuple[RealAnswerHead, dict[str, Any]]:
    """A `RealAnswerHead` on analyst-labelled answers (`real`: text, labels): rows with the same text (several
    analysts) become one answer with soft labels (the share of analysts giving each label); thresholds per
    kind chosen on those answers with params.yaml's decision rules (`stage.fit_head_thresholds`)."""
    from pipeline.tagger import stage

    section = tag_params(params)
    ids = list(tagger.label_ids)
    Y_rows = LabelledSet(real).matrix(ids).astype(np.float64)
    texts = real["text"].astype(str).tolist()
    unique = list(dict.fromkeys(texts))
    pos = {t: k for k, t in enumerate(unique)}
    group = np.array([pos[t] for t in texts])
    Y = np.zeros((len(unique), len(ids)))
    np.add.at(Y, group, Y_rows)
    Y /= np.bincount(group, minlength=len(unique))[:, None]
    margin, vectors, n_words, _ = real_answer_inputs(tagger, unique, params)
    head = RealAnswerHead(C=float(section["real_head_C"]), vector_C=float(section["real_head_vector_C"]),
                          min_positives=float(section["real_head_min_positives"]), seed=int(section.get("seed", 0)))
    head.fit(margin, vectors, Y, list(tagger.label_kinds))
    chosen = stage.fit_head_thresholds(head, Y, ids, n_words, stage.DecisionRules.from_params(section))
    info = {"applied": True, "answers": len(unique), "analyst_rows": len(texts),
            "labels_with_centroid": int(head.has_centroid_.sum()),
            "labels_with_vector_model": int(head.vector_fitted_.sum()), "thresholds": chosen}
    head.info_ = info
    return head, info


def predict_rows(tagger: Tagger, frame: pd.DataFrame, params: dict[str, Any],
                 head: RealAnswerHead | None = None) -> list[list[str]]:
    """Label ids per text, tagged exactly as `wsis tag --input` tags them (sentence passages, mentions, the
    decision rules of params.yaml `tag:`, the version's real-answer head)."""
    from pipeline.tagger.stage import tag_adhoc_frame

    out, _ = tag_adhoc_frame(tagger, pd.DataFrame({"id": frame["id"], "text": frame["text"]}), params,
                             head=head)
    return [split_codes(a, "action_line") + split_codes(s, "sdg")
            for a, s in zip(out["action_lines"], out["sdgs"], strict=True)]


SHIFT_GRID_ACTION_LINES = tuple(np.round(np.arange(-1.0, 3.01, 0.5), 2))
SHIFT_GRID_SDGS = tuple(np.round(np.arange(-2.0, 1.01, 0.5), 2))


def _micro_f1(Y: np.ndarray, P: np.ndarray) -> float:
    tp = float((Y & P).sum())
    den = 2 * tp + float((~Y & P).sum()) + float((Y & ~P).sum())
    return 2 * tp / den if den else 0.0


def real_answer_shift(
    make: Any, texts: list[str], Y: np.ndarray, E: np.ndarray, sample_weight: np.ndarray | None,
    analyst: np.ndarray, params: dict[str, Any],
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-kind shift (log-odds) of the model's thresholds so that params.yaml's decision rules fit real
    answers for THIS model: (Action Lines, SDGs).

    Why: the rules' margins were chosen for a model trained on written examples only, whose scores on real
    answers run low (Action Line margin below 0). A model trained on analyst labels scores real answers
    higher, and the same margins then over-tag. The shift is chosen out-of-fold on the analyst training rows
    (`threshold_shift_folds` folds: fit without a fold, tag the fold as `wsis tag` does, grid of shifts,
    objective: mean of Action Line and SDG micro-F1), so the validation part never influences it. Zero when
    there are fewer than `threshold_shift_min` analyst rows or the rule is not `calibrated`."""
    from pipeline.tagger import stage

    section = tag_params(params)
    rules = stage.DecisionRules.from_params(section)
    idx = np.flatnonzero(analyst)
    zero = np.zeros(2)
    if len(idx) < max(int(section["threshold_shift_min"]), 2) or rules.rule != "calibrated":
        return zero, {"applied": False, "analyst_rows": int(len(idx))}
    k = max(2, min(int(section["threshold_shift_folds"]), len(idx)))
    order = np.random.default_rng(int(section.get("seed", 0))).permutation(idx)
    folds = [order[f::k] for f in range(k)]
    ids = None
    scored = []
    for rows in folds:
        keep = np.ones(len(texts), dtype=bool)
        keep[rows] = False
        w = None if sample_weight is None else sample_weight[keep]
        model = make().fit([texts[i] for i in np.flatnonzero(keep)], Y[keep], E[keep], sample_weight=w)
        ids = list(model.label_ids)
        fold_texts = [texts[i] for i in rows]
        skip = np.array([not t.strip() for t in fold_texts])
        seg, owners = stage.sentence_passages(fold_texts, int(section.get("sentence_max_words", 20)), skip)
        seg_vec = features.encode(seg, params, config.cache_dir()) if seg else np.zeros((0, E.shape[1]))
        proba = model.predict_proba(fold_texts, E[rows])
        seg_proba = model.predict_proba(seg, seg_vec) if seg else np.zeros((0, proba.shape[1]))
        scored.append((model, fold_texts, proba, seg_proba, np.asarray(owners, dtype=np.int64), skip,
                       [features.find_mentions(t) for t in fold_texts], np.array([len(t.split()) for t in seg])))
    assert ids is not None
    is_sdg = np.array([lab.startswith("SDG") for lab in ids])
    gold = np.vstack([Y[rows] for rows in folds]).astype(bool)
    kinds = np.asarray(list(scored[0][0].label_kinds))
    results: dict[tuple[float, float], float] = {}
    for d_al in SHIFT_GRID_ACTION_LINES:
        for d_sdg in SHIFT_GRID_SDGS:
            preds = []
            for model, fold_texts, proba, seg_proba, owners, skip, mentions, seg_words in scored:
                shifted = stage.with_decision_params(model, section)
                shifted.thresholds_ = sigmoid(logit(model.thresholds_) + np.where(kinds == "sdg", d_sdg, d_al))
                res = stage.decide_texts(shifted, fold_texts, proba, seg_proba, owners, mentions,
                                         str(section.get("segment_aggregate", "max")), skip,
                                         rules=rules, seg_words=seg_words)
                preds.append(res.pred.astype(bool))
            P = np.vstack(preds)
            results[(float(d_al), float(d_sdg))] = (_micro_f1(gold[:, ~is_sdg], P[:, ~is_sdg])
                                                    + _micro_f1(gold[:, is_sdg], P[:, is_sdg])) / 2
    best = max(results, key=lambda key: (round(results[key], 9), -abs(key[0]) - abs(key[1])))
    return np.array(best), {
        "applied": True, "analyst_rows": int(len(idx)), "folds": k,
        "action_lines": best[0], "sdgs": best[1],
        "oof_mean_micro_f1": round(results[best], 4), "oof_mean_micro_f1_unshifted": round(results[(0.0, 0.0)], 4),
    }


def heldout_metrics(tagger: Tagger, held: pd.DataFrame, params: dict[str, Any],
                    pred_rows: list[list[str]] | None = None, head: RealAnswerHead | None = None) -> dict[str, Any]:
    """Metrics of the tagger used exactly as `wsis tag --input` uses it (sentence passages, mentions)."""
    ids = list(tagger.label_ids)
    rows = pred_rows if pred_rows is not None else predict_rows(tagger, held, params, head)
    pred = LabelledSet(pd.DataFrame({"labels": rows})).matrix(ids)
    return evaluate_predictions(LabelledSet(held).matrix(ids), pred, ids)


KINDS = ("action_lines", "sdgs")


def _kind_rows(rows: list[list[str]], kind: str) -> list[list[str]]:
    sdg = kind == "sdgs"
    return [[x for x in r if x.startswith("SDG") == sdg] for r in rows]


def paired_comparison(
    gold: list[list[str]], old: list[list[str]] | None, new: list[list[str]], n_boot: int, seed: int
) -> dict[str, Any]:
    """Micro P/R/F1 of Action Lines and SDGs with 95% bootstrap CIs for the new (and old) model on the same
    answers, and the paired difference of their mean micro-F1: every resample draws the same answers for
    both models (`pipeline.evaluate.bootstrap_multilabel`, same seed and size). `better`: the CI of the
    difference lies above 0 (a tie is not an improvement)."""
    from pipeline.evaluate import binarize, bootstrap_multilabel, percentile_ci

    def one(pred: list[list[str]]) -> tuple[dict[str, Any], np.ndarray]:
        out: dict[str, Any] = {}
        means = []
        for kind in KINDS:
            g, p = _kind_rows(gold, kind), _kind_rows(pred, kind)
            labels = sorted({x for r in g + p for x in r})
            yt, _ = binarize(g, labels)
            yp, _ = binarize(p, labels)
            tp, fp, fn = int((yt & yp).sum()), int((~yt & yp).sum()), int((yt & ~yp).sum())
            boot = bootstrap_multilabel(yt, yp, n_boot, seed)
            out[kind] = {"micro_precision": round(tp / max(tp + fp, 1), 4),
                         "micro_recall": round(tp / max(tp + fn, 1), 4),
                         "micro_f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4)}
            ci = percentile_ci(boot["micro_f1"])
            out[kind]["micro_f1_ci"] = [round(x, 4) for x in ci] if ci else None
            means.append(boot["micro_f1"])
        dist = np.mean(np.vstack(means), axis=0) if means and means[0].size else np.zeros(0)
        out["mean_micro_f1"] = round((out["action_lines"]["micro_f1"] + out["sdgs"]["micro_f1"]) / 2, 4)
        ci = percentile_ci(dist)
        out["mean_micro_f1_ci"] = [round(x, 4) for x in ci] if ci else None
        return out, dist

    result: dict[str, Any] = {"n_answers": len(gold), "n_boot": int(n_boot)}
    result["new"], d_new = one(new)
    if old is None:
        result.update(old=None, difference=None, difference_ci=None, better=None)
        return result
    result["old"], d_old = one(old)
    diff = round(result["new"]["mean_micro_f1"] - result["old"]["mean_micro_f1"], 4)
    ci = percentile_ci(d_new - d_old) if d_new.size else None
    result["difference"] = diff
    result["difference_ci"] = [round(x, 4) for x in ci] if ci else None
    result["better"] = bool(ci is not None and ci[0] > 0)
    return result


def model_file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of each model file of a version folder (the skops model, the real-answer head), recorded in
    metrics.json and the card; `load_tagger` / `load_real_head` refuse a file that no longer matches."""
    files = sorted(Path(folder).glob("*.skops")) + sorted(Path(folder).glob(HEAD_FILE))
    return {f.name: sha256_file(f) for f in files}


def _new_version(root: Path) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("v%Y%m%dT%H%M%SZ")
    version, k = stamp, 1
    while (root / version).exists():
        k += 1
        version = f"{stamp}-{k}"
    return version


def run(
    label_files: list[Path], params: dict[str, Any], models_root: Path | None = None,
    force: bool = False, training_dir: Path | None = None, note: str | None = None,
) -> dict[str, Any]:
    """Train, compare with CURRENT, save `models/tagger/<version>/`, promote it only if it proves better.

    Comparison set: the analyst labels' validation part (real answers never trained on) when it holds at
    least `analyst_validation_min` answers, else the written examples' held-out split; both models tag it
    with params.yaml's decision rules and `paired_comparison` decides. `note` goes into the model card (how
    the version was made, e.g. by a script under data/training/)."""
    t0 = time.perf_counter()
    section = tag_params(params)
    taxonomy = load_taxonomy()
    data = assemble([Path(f) for f in label_files], section, training_dir)
    tagger, info = fit_on(data, params, taxonomy)
    head = info.pop("head", None)
    root = tagger_root(models_root)
    held = data.frame[data.frame["split"] == "heldout"].reset_index(drop=True)
    valid = data.frame[data.frame["split"] == "validation"].reset_index(drop=True)
    n_folds = int(section["real_head_cv_folds"])
    is_real = (data.frame["split"] == "train") & data.frame["source"].astype(str).str.startswith("analyst")
    crossed = (data.frame[is_real].reset_index(drop=True) if head is not None and n_folds >= 2
               else data.frame.iloc[:0])
    cross_pred = cross_fitted_rows(tagger, crossed, params, n_folds) if len(crossed) else []
    new_valid_rows = predict_rows(tagger, valid, params, head) if len(valid) else []
    # every analyst answer, each predicted by a head that never saw it
    valid = pd.concat([valid, crossed], ignore_index=True)
    use_real = len(valid) >= max(int(section["analyst_validation_min"]), 1)
    n_boot, seed = int(section["compare_n_boot"]), int(section.get("seed", 0))

    before: dict[str, Any] | None = None
    old_rows: dict[str, list[list[str]]] = {}
    cur = current_version(root)
    if cur and (root / cur / TAGGER.file_name).exists():
        try:
            old = load_tagger(root / cur / TAGGER.file_name)
            old_head = load_real_head(root / cur, old, section)
            if len(held):
                old_rows["held"] = predict_rows(old, held, params, old_head)
                before = heldout_metrics(old, held, params, old_rows["held"])
            if len(valid):
                old_rows["valid"] = predict_rows(old, valid, params, old_head)
        except Exception as exc:  # an unreadable old model must not block retraining
            log.warning("could not evaluate current model %s: %s", cur, exc)
            old_rows = {}

    new_valid = new_valid_rows + cross_pred
    new_held = predict_rows(tagger, held, params, head) if len(held) else []
    real = (paired_comparison(valid["labels"].tolist(), old_rows.get("valid"), new_valid, n_boot, seed)
            if len(valid) else None)
    written = (paired_comparison(held["labels"].tolist(), old_rows.get("held"), new_held, n_boot, seed)
               if len(held) else None)
    decisive = real if use_real else written
    after = info.get("heldout")
    new_f1 = after["all"]["micro_f1"] if after else 0.0
    old_f1 = before["all"]["micro_f1"] if before else None
    has_old = decisive is not None and decisive["old"] is not None
    better = bool(decisive["better"]) if has_old and decisive else False
    promote = force or not has_old or better
    version = _new_version(root)
    folder = root / version
    folder.mkdir(parents=True, exist_ok=True)
    save_tagger(tagger, folder / TAGGER.file_name)
    if head is not None:
        save_head(head, folder / HEAD_FILE)

    data_files = sorted((training_dir or TRAINING_DIR).glob("*.csv")) + [Path(f) for f in label_files]
    hashes = {str(_rel(f)): sha256_file(f) for f in data_files if Path(f).exists() and Path(f).is_file()}
    hashes.update({str(_rel(Path(f))): sha256_file(f) for f in taxonomy.source_files})
    frame = data.frame
    seen: dict[str, int] = {}
    for src, split in zip(frame["source"].astype(str), frame["split"].astype(str), strict=True):
        seen[f"{src} / {split}"] = seen.get(f"{src} / {split}", 0) + 1
    metrics = {
        "version": version, "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "params": {k: v for k, v in section.items() if k != "model_version"},
        "data": {"files_sha256": hashes, **{k: info[k] for k in ("n_train", "n_heldout", "n_validation",
                                                                 "train_sources")},
                 "rows_by_source_and_split": seen,
                 "note": note},
        "timings": {"embed_seconds": info["embed_seconds"], "fit_seconds": info["fit_seconds"],
                    "total_seconds": round(time.perf_counter() - t0, 2)},
        "thresholds": info["thresholds"], "cv_f1_per_label": info["cv_f1_per_label"],
        "threshold_shift": info["threshold_shift"], "real_head": info["real_head"], "heldout": after,
        "before": {"version": cur, "heldout": before},
        "real_answer_validation": real, "real_answer_cross_fitted": int(len(crossed)),
        "written_heldout_comparison": written,
        "compared_on": ("real-answer validation" if use_real else "written held-out") if has_old else None,
        "promoted": bool(promote), "forced": bool(force),
        HASHES_KEY: model_file_hashes(folder),
    }
    write_json(metrics, folder / "metrics.json")
    write_text(model_card(metrics, taxonomy), folder / "README.md")
    if promote:
        TAGGER.at(root).promote(version)
        log.info("tagger %s is now CURRENT", version)
    elif decisive is not None:
        log.warning("tagger %s is not proven better on the %s (%d answers): gain in mean micro-F1 %+.3f, "
                    "95%% CI %s: CURRENT stays %s (use --force to replace it)", version, metrics["compared_on"],
                    decisive["n_answers"], decisive["difference"], decisive["difference_ci"], cur)
    return {
        "version": version, "model_dir": str(folder), "promoted": bool(promote),
        "current": version if promote else cur, "n_train": info["n_train"], "n_heldout": info["n_heldout"],
        "n_validation": info["n_validation"], "n_compared": int(len(valid)), "cross_fitted": int(len(crossed)),
        "compared_on": metrics["compared_on"],
        "gain": decisive["difference"] if decisive else None,
        "gain_ci": decisive["difference_ci"] if decisive else None,
        "real_answer_mean_micro_f1": real["new"]["mean_micro_f1"] if real else None,
        "real_answer_before_mean_micro_f1": real["old"]["mean_micro_f1"] if real and real["old"] else None,
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


def _shift_text(info: dict[str, Any] | None) -> str:
    if not info or not info.get("applied"):
        return "Thresholds are not shifted (no or too few analyst labels)."
    return (f"Thresholds shifted (log-odds) by {info['action_lines']:+.1f} for Action Lines and "
            f"{info['sdgs']:+.1f} for SDGs, chosen out-of-fold on the {info['analyst_rows']} analyst training "
            f"labels so that these rules fit real answers for this model (mean micro-F1 there "
            f"{info['oof_mean_micro_f1_unshifted']:.3f} unshifted, {info['oof_mean_micro_f1']:.3f} shifted).")


def _head_text(info: dict[str, Any] | None) -> str:
    if not info or not info.get("applied"):
        return ""
    t = info.get("thresholds") or {}
    return (f" **Real-answer head** (`{HEAD_FILE}`, pipeline/tagger/realhead.py): learned from {info['answers']} "
            f"analyst-labelled real answers ({info['analyst_rows']} label rows); on top of the margins above it "
            "adds prototype evidence (label centroids of >= 2 answers) and per-label vector models, combined by "
            "one logistic regression; answers of fewer than `head_max_passages` passages are decided by its "
            f"scores (thresholds: Action Lines {t.get('action_lines')}, SDGs {t.get('sdgs')}, chosen on those "
            "answers with the rules above); longer documents keep the passage-support rule.")


def _ci(values: list[float] | None) -> str:
    return f" [{values[0]:.3f}, {values[1]:.3f}]" if values else ""


def _comparison_lines(m: dict[str, Any]) -> list[str]:
    """Real-answer validation and written held-out, old vs new with 95% CIs and the paired gain."""
    lines = [f"## Old vs new, paired bootstrap (decision rules of params.yaml; decided on: "
             f"{m.get('compared_on') or 'nothing (no earlier model)'})", "",
             "| set | answers | metric | before | after |", "|---|---:|---|---|---|"]
    shown = False
    for name, key in (("real answers (analyst validation)", "real_answer_validation"),
                      ("written examples (held-out)", "written_heldout_comparison")):
        c = m.get(key)
        if not c:
            continue
        shown = True
        for kind, label in (("action_lines", "Action Lines micro-F1"), ("sdgs", "SDGs micro-F1")):
            old = c["old"][kind] if c.get("old") else None
            lines.append(f"| {name} | {c['n_answers']} | {label} | "
                         + (f"{old['micro_f1']:.3f}{_ci(old['micro_f1_ci'])}" if old else "-")
                         + f" | {c['new'][kind]['micro_f1']:.3f}{_ci(c['new'][kind]['micro_f1_ci'])} |")
        old_mean = (f"{c['old']['mean_micro_f1']:.3f}{_ci(c['old']['mean_micro_f1_ci'])}" if c.get("old")
                    else "-")
        lines.append(f"| {name} | {c['n_answers']} | mean | {old_mean} | "
                     f"{c['new']['mean_micro_f1']:.3f}{_ci(c['new']['mean_micro_f1_ci'])} |")
        if c.get("difference") is not None:
            lines.append(f"| {name} | {c['n_answers']} | gain (after - before) | | "
                         f"{c['difference']:+.3f}{_ci(c['difference_ci'])} |")
    if not shown:
        lines.append("| - | 0 | - | - | - |")
    if m.get("real_answer_cross_fitted"):
        lines += ["", f"Real answers: the hash-split validation part plus {m['real_answer_cross_fitted']} analyst "
                  f"training rows cross-fitted (each tagged by a real-answer head fitted on the other folds, "
                  "folds by a hash of the text; the shipped head is fitted on all of them)."]
    lines += ["", "A version replaces CURRENT only when the 95% CI of its gain lies above 0 (a tie is not an "
              "improvement), unless `--force`."]
    return lines


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
        "label is chosen by multi-label stratified cross-validation (analyst labels weigh "
        f"{m['params'].get('analyst_weight')} x a written example). The tag stage turns scores into tags with "
        "the decision rules of params.yaml `tag:` (`stage.DecisionRules`, read at tagging time, not stored "
        f"here; at training time: rule {m['params'].get('rule', 'calibrated')}): a label is kept when its score "
        "(log-odds blend of the whole text and its best sentence passage, weight "
        f"{m['params'].get('whole_weight')}) is at least a margin above its threshold (Action Lines "
        f"{m['params'].get('action_line_margin')}, SDGs {m['params'].get('sdg_margin')}); no SDG is forced, at "
        f"most {m['params'].get('max_sdgs')} SDGs per answer, an Action Line adds the SDG the codebook pairs "
        "it with, bare C7 follows `c7_policy`, texts under "
        f"{m['params'].get('min_words')} words get no model tag, documents need support from several "
        "passages; explicit mentions are always added. "
        + _shift_text(m.get("threshold_shift")) + _head_text(m.get("real_head")),
        "Load only with `pipeline.tagger.model.load_tagger` (skops, explicit trusted-type list; it refuses a "
        "file whose sha256 differs from the one recorded below and in metrics.json).", "",
        "## Model files (sha256)",
    ]
    lines += [f"- `{f}` `{h}`" for f, h in (m.get(HASHES_KEY) or {}).items()]
    lines += [
        "",
        "## Data it saw",
        f"- trained on {m['data']['n_train']} texts ({m['data']['train_sources']}); written held-out examples "
        f"(never trained on): {m['data']['n_heldout']}; analyst labels kept for real-answer validation (never "
        f"trained on): {m['data'].get('n_validation', 0)}",
    ]
    lines += [f"  - {k}: {n}" for k, n in (m["data"].get("rows_by_source_and_split") or {}).items()]
    if m["data"].get("note"):
        lines += ["", str(m["data"]["note"]), ""]
    lines += ["- files (sha256):"]
    lines += [f"  - `{f}` `{h}`" for f, h in m["data"]["files_sha256"].items()]
    lines += ["", "## Parameters", "```json", json.dumps(m["params"], indent=2, default=str), "```", "",
              "## Written-example held-out metrics (before = CURRENT model at training time, same split)", "",
              "| metric | before | after |", "|---|---|---|"]
    for group, label in (("all", "all labels"), ("action_lines", "Action Lines"), ("sdgs", "SDGs")):
        for key in ("micro_precision", "micro_recall", "micro_f1", "macro_f1"):
            lines.append(f"| {label} {key} | {_fmt(before, group, key)} | {_fmt(after, group, key)} |")
    lines.append(f"| SDG named-goal accuracy | {_fmt(before, '', 'sdg_named_accuracy')} | "
                 f"{_fmt(after, '', 'sdg_named_accuracy')} |")
    lines += ["", f"Before: version {m['before']['version'] or '(none: no earlier model)'}.", ""]
    lines += _comparison_lines(m)
    lines += ["",
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
