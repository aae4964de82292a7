"""Theme discovery per question: the parts of `pipeline.themes.parts` (reduce, cluster, refine), then seed
matching (a seed theme takes only the passages that match it), representation (naming) and assignment."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pipeline.embed.vectors import normalise
from pipeline.params import ThemesParams
from pipeline.progress import track
from pipeline.themes import naming, parts
from pipeline.themes.parts import DiscoveryParts, build_parts
from pipeline.themes.parts import cosine_silhouette as cosine_silhouette  # re-exported (tests, benchmarks)
from pipeline.themes.seeds import SeedThemes, keyword_hits

OTHER_ID = "other"
NONANSWER_ID = "nonanswer"

# the themes parameters' defaults (one definition, pipeline.params), without the parts other modules read
DEFAULTS: dict[str, Any] = {**ThemesParams().model_dump(exclude={"framework", "edits", "seed_file"}), "seed": 0}

UNKNOWN_LANGUAGES = frozenset({"", "und", "unknown", "none", "nan"})


def theme_params(params: dict[str, Any]) -> dict[str, Any]:
    """The themes section (plus the global seed and, from full params, `clean.spacy_model`, which naming uses)
    with defaults filled in; accepts full params too."""
    section = dict(params.get("themes", params) or {}) if "themes" in params else dict(params)
    out = dict(DEFAULTS)
    out.update({k: v for k, v in section.items() if v is not None})
    out["seed"] = int(section.get("seed", params.get("seed", DEFAULTS["seed"])))
    clean = params.get("clean") if "themes" in params else None
    if isinstance(clean, dict) and clean.get("spacy_model"):  # naming checks English headings with clean's model
        out["spacy_model"] = str(clean["spacy_model"])
    return out


@dataclass
class ThemeResult:
    """Everything the themes stage writes."""

    themes: pd.DataFrame
    theme_assignments: pd.DataFrame
    segment_assignments: pd.DataFrame
    theme_by_question: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def k_bounds(n_segments: int, cfg: dict[str, Any]) -> tuple[int, int]:
    """Bounds on the number of themes for a question of `n_segments` (`parts.k_bounds` with the params)."""
    return parts.k_bounds(n_segments, int(cfg["min_themes"]), int(cfg["max_themes"]), float(cfg["k_per_segments"]),
                          int(cfg["min_theme_size"]))


def match_seeds(
    centroids: np.ndarray,
    member_texts: list[list[str]],
    seeds: SeedThemes | None,
    cfg: dict[str, Any],
    question_mean: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """For each cluster: (seed index or -1, match score); one cluster per seed (greedy, best first).

    score = w * cosine(centroid, seed description) + (1 - w) * keyword lift, where the lift is the
    share of the cluster's segments mentioning a seed keyword minus that share in the whole question.
    A cluster must also be closer to the seed than the question as a whole is (`seed_min_lift`), so
    that in a consultation about AI not every cluster becomes "AI governance".
    """
    k = len(centroids)
    if seeds is None or not len(seeds) or k == 0:
        return [(-1, 0.0)] * k
    w = float(cfg["seed_cosine_weight"])
    hits = [keyword_hits(texts, seeds) if texts else np.zeros((0, len(seeds)), bool) for texts in member_texts]
    n_all = sum(len(h) for h in hits)
    base = sum(h.sum(axis=0) for h in hits) / max(n_all, 1)
    kw = np.stack([np.clip(h.mean(axis=0) - base, 0, 1) if len(h) else np.zeros(len(seeds)) for h in hits])
    if seeds.vectors is not None and seeds.vectors.size:
        cos = centroids @ seeds.vectors.T
        qm = question_mean if question_mean is not None else centroids.mean(axis=0)
        qm = qm / max(float(np.linalg.norm(qm)), 1e-9)
        lift_ok = (cos - (qm @ seeds.vectors.T)[None, :]) >= float(cfg["seed_min_lift"])
        score = np.where(lift_ok, w * cos + (1 - w) * kw, 0.0)
    else:
        score = kw
    thr = float(cfg["seed_match_threshold"])
    out: list[tuple[int, float]] = [(-1, 0.0)] * k
    pairs = sorted(
        ((float(score[c, s]), c, s) for c in range(k) for s in range(len(seeds)) if score[c, s] >= thr),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    used_c: set[int] = set()
    used_s: set[int] = set()
    for sc, c, s in pairs:
        if c in used_c or s in used_s:
            continue
        used_c.add(c)
        used_s.add(s)
        out[c] = (s, sc)
    return out


def seed_closeness(x: np.ndarray, texts: list[str], seeds: SeedThemes, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Per passage of a question: z-score of its cosine to seed `s` within the question, and a keyword hit."""
    one = SeedThemes((seeds.ids[s],), (seeds.labels[s],), (seeds.descriptions[s],), (seeds.keywords[s],))
    kw = keyword_hits(texts, one)[:, 0]
    if seeds.vectors is None or not seeds.vectors.size:
        return np.where(kw, np.inf, -np.inf), kw
    cos = x @ seeds.vectors[s]
    sd = float(cos.std())
    return ((cos - float(cos.mean())) / sd if sd > 1e-9 else np.zeros(len(cos))), kw


def seed_members(
    x: np.ndarray, texts: list[str], seeds: SeedThemes, s: int, z_min: float, kw_z: float = 0.0
) -> np.ndarray:
    """Which passages of a question match seed `s`: cosine to the seed description >= z_min standard
    deviations above the question's mean cosine, or a seed keyword and >= kw_z above the mean.

    Relative to the question, because every answer of a consultation about AI is somewhat close to
    "AI governance": the seed takes the passages that are about it more than the question as a whole is.
    """
    z, kw = seed_closeness(x, texts, seeds, s)
    return np.asarray((z >= z_min) | (kw & (z >= kw_z)), dtype=bool)


def document_holds(n: Any, total: Any, cfg: dict[str, Any]) -> Any:
    """The one rule of holding a theme (`held_themes`): an answer with `n` (> 0) of its `total` substantive
    passages in the theme holds it, but a document (>= `document_segments` passages) only with
    >= `document_min_passages` of them and >= `document_min_share` of its passages. Scalars or arrays."""
    doc_n = int(cfg.get("document_segments", DEFAULTS["document_segments"]))
    min_p = int(cfg.get("document_min_passages", DEFAULTS["document_min_passages"]))
    share = float(cfg.get("document_min_share", DEFAULTS["document_min_share"]))
    n, total = np.asarray(n), np.asarray(total)
    return (n > 0) & ((total < doc_n) | ((n >= min_p) & (n >= share * total)))


def _holder_counter(answer_ids: np.ndarray, respondents: np.ndarray, cfg: dict[str, Any]) -> Any:
    """mask of a question's passages -> respondents whose answer would hold a theme of those passages."""
    aids = np.asarray(answer_ids).astype(str)
    uniq, inv = np.unique(aids, return_inverse=True)
    total = np.bincount(inv, minlength=len(uniq))
    resp_of = {a: str(r) for a, r in zip(aids, respondents, strict=True)}

    def count(mask: np.ndarray) -> int:
        ok = document_holds(np.bincount(inv[mask], minlength=len(uniq)), total, cfg)
        return len({resp_of[str(a)] for a in uniq[ok]})

    return count


def restrict_seeds(
    x: np.ndarray,
    labels: np.ndarray,
    seeds_m: list[tuple[int, float]],
    seeds: SeedThemes | None,
    texts: list[str],
    respondents: np.ndarray,
    cfg: dict[str, Any],
    answer_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, list[tuple[int, float]], dict[str, int]]:
    """A seed theme takes only the passages that match its seed (`seed_members`); no catch-all seed themes.

    A seed theme still held (`held_themes` rules, given `answer_ids`) by more than `seed_max_share` of the
    question's respondents is far broader than its seed: it keeps only passages ever more typical of the seed
    (z raised in steps of 0.5, at most 3 above `seed_member_z`).
    The rest of a seed-matched cluster is an emergent theme of its own when it has >= `min_theme_size`
    respondents and a quarter of the cluster's, else its passages join the nearest emergent theme within
    `other_threshold` (or "other").
    A cluster with fewer matching respondents than `min_theme_size` loses the seed name.
    Returns the new labels (new themes numbered after the existing ones), the seed match of every theme and
    counts of what was done.
    """
    stats = {"seed_split": 0, "seed_dropped": 0, "seed_passages_moved": 0, "seed_narrowed": 0}
    if seeds is None or not len(seeds) or not any(si >= 0 for si, _ in seeds_m):
        return labels, seeds_m, stats
    labels = labels.copy()
    seeds_m = list(seeds_m)
    min_size = int(cfg["min_theme_size"])
    other_t = float(cfg["other_threshold"])
    z_min = float(cfg.get("seed_member_z", DEFAULTS["seed_member_z"]))
    max_share = float(cfg.get("seed_max_share", DEFAULTS["seed_max_share"]))
    holders = _holder_counter(answer_ids, respondents, cfg) if answer_ids is not None else None
    n_resp = max(len(set(respondents.tolist())), 1)
    for c in range(len(seeds_m)):
        si, _ = seeds_m[c]
        if si < 0:
            continue
        mem = labels == c
        zs, kw = seed_closeness(x, texts, seeds, si)
        keep = mem & ((zs >= z_min) | (kw & (zs >= 0.0)))
        # still held by most of the question: the seed takes only its most typical passages (z raised by 0.5)
        z = z_min
        while holders is not None and holders(keep) > max_share * n_resp and z < z_min + 3.0:
            z += 0.5
            keep = mem & ((zs >= z) | (kw & (zs >= z - z_min)))
            stats["seed_narrowed"] += int(z == z_min + 0.5)
        rest = mem & ~keep
        if not rest.any():
            continue
        if len(set(respondents[keep].tolist())) < min_size:
            seeds_m[c] = (-1, 0.0)
            stats["seed_dropped"] += 1
            continue
        stats["seed_passages_moved"] += int(rest.sum())
        # a large rest (>= a quarter of the cluster's respondents) is a theme of its own; a small one joins
        # the nearest emergent theme (or other): a few stray passages are no theme
        n_rest = len(set(respondents[rest].tolist()))
        if n_rest >= max(min_size, 0.25 * len(set(respondents[mem].tolist()))):
            labels[rest] = len(seeds_m)
            seeds_m.append((-1, 0.0))
            stats["seed_split"] += 1
            continue
        idx = np.flatnonzero(rest)
        labels[idx] = -1
        emergent = [e for e in range(len(seeds_m)) if seeds_m[e][0] < 0 and (labels == e).any()]
        if emergent:
            cent = parts.centroids(x, np.where(np.isin(labels, emergent), labels, -1), len(seeds_m))[emergent]
            sim = x[idx] @ cent.T
            near = np.array(emergent)[sim.argmax(axis=1)]
            labels[idx] = np.where(sim.max(axis=1) >= other_t, near, -1)
    return labels, seeds_m, stats


def _keyphrases_by_answer(answers: pd.DataFrame) -> dict[str, list[str]]:
    if "keyphrases" not in answers.columns:
        return {}
    out: dict[str, list[str]] = {}
    for aid, kps in zip(answers["answer_id"], answers["keyphrases"], strict=True):
        if kps is None or (isinstance(kps, float) and math.isnan(kps)):
            continue
        out[str(aid)] = [str(k) for k in list(kps)]
    return out


def _question_texts(answers: pd.DataFrame) -> dict[str, str]:
    """One question text per question id (the most common one), for naming."""
    if "question_text" not in answers.columns:
        return {}
    texts = answers[["question_id", "question_text"]].astype(str)
    texts = texts[texts["question_text"].str.strip() != ""]
    return {
        str(qid): str(group["question_text"].value_counts().sort_index().idxmax())
        for qid, group in texts.groupby("question_id", sort=True)
    }


def answer_languages(ans: pd.DataFrame) -> dict[str, str]:
    """Answer id -> the clean stage's language code ("" when unknown or not detected)."""
    if "language" not in ans.columns:
        return {}
    codes = ans["language"].fillna("").astype(str).str.strip().str.lower()
    return {str(a): ("" if g in UNKNOWN_LANGUAGES else g) for a, g in zip(ans["answer_id"], codes, strict=True)}


def main_language(ans: pd.DataFrame, langs: dict[str, str], given: str | None = None) -> str:
    """The language labels are written in: `themes.label_language`, else the most common one of the
    substantive answers (ties: alphabetical); "" when no answer has a known language."""
    if given:
        return str(given).strip().lower()
    sub = ans
    if "is_nonanswer" in ans.columns:
        sub = ans[~ans["is_nonanswer"].fillna(False).astype(bool)]
    codes = pd.Series([langs.get(str(a), "") for a in sub["answer_id"]], dtype=object)
    counts = codes[codes != ""].value_counts()
    if counts.empty:
        return ""
    top = int(counts.max())
    return sorted(str(g) for g, n in counts.items() if int(n) == top)[0]


def _prepare(answers: pd.DataFrame, segments: pd.DataFrame, vectors: np.ndarray) -> tuple[
    pd.DataFrame, pd.DataFrame, np.ndarray
]:
    """Sort everything by ids (row-order independence) and add the columns we rely on."""
    if len(segments) != len(vectors):
        raise ValueError(f"{len(segments)} segments but {len(vectors)} segment vectors")
    seg = segments.reset_index(drop=True).copy()
    seg["_row"] = np.arange(len(seg))
    # Boilerplate (headers, letterheads, disclaimers repeated across documents) is not what anyone said:
    # it takes no part in clustering, naming, quotes or counts.
    if "is_boilerplate" in seg.columns:
        seg = seg[~seg["is_boilerplate"].fillna(False).astype(bool)].reset_index(drop=True)
    for col in ("segment_id", "answer_id", "response_id", "question_id", "text"):
        seg[col] = seg[col].astype(str)
    if "text_redacted" not in seg.columns:
        seg["text_redacted"] = seg["text"].map(naming.redact_pii)
    seg["text_redacted"] = seg["text_redacted"].fillna("").astype(str)
    if "is_nonanswer" not in seg.columns:
        seg["is_nonanswer"] = False
    seg["is_nonanswer"] = seg["is_nonanswer"].fillna(False).astype(bool)
    seg = seg.sort_values("segment_id", kind="stable").reset_index(drop=True)
    vec = np.asarray(vectors, dtype=np.float32)[seg["_row"].to_numpy()]
    zero = np.linalg.norm(vec, axis=1) < 1e-6
    seg["is_nonanswer"] = seg["is_nonanswer"] | zero | (seg["text"].str.strip() == "")
    ans = answers.reset_index(drop=True).copy()
    if "answer_id" not in ans.columns:
        ans["answer_id"] = ans["response_id"].astype(str) + "::" + ans["question_id"].astype(str)
    for col in ("answer_id", "response_id", "question_id"):
        ans[col] = ans[col].astype(str)
    ans = ans.drop_duplicates("answer_id").sort_values("answer_id", kind="stable").reset_index(drop=True)
    return ans, seg.drop(columns="_row"), normalise(vec)


def discover_themes(
    answers_clean: pd.DataFrame,
    segments: pd.DataFrame,
    seg_vectors: np.ndarray,
    params: dict[str, Any],
    seed_themes: SeedThemes | None = None,
    parts: DiscoveryParts | None = None,
) -> ThemeResult:
    """Discover themes per question from segment embeddings (rows aligned with `segments`).

    `parts` (reducer, clusterer, refinement, representation; see `pipeline.themes.parts`) default to those
    the themes parameters name; `build_parts(theme_params(params), clusterer=my_clusterer)` swaps one in code.
    BLAS/OpenMP threads are capped (`themes.threads`, default 1): k-means with spinning OpenMP threads
    runs 10-40x slower on a busy 2-core machine, while one thread loses little when it is idle.
    """
    cfg = theme_params(params)
    chosen = parts if parts is not None else build_parts(cfg)
    with threadpool_limits(limits=int(cfg["threads"])):
        return _discover(answers_clean, segments, seg_vectors, cfg, seed_themes, chosen)


def _discover(
    answers_clean: pd.DataFrame,
    segments: pd.DataFrame,
    seg_vectors: np.ndarray,
    cfg: dict[str, Any],
    seed_themes: SeedThemes | None,
    chosen: DiscoveryParts,
) -> ThemeResult:
    ans, seg, vec = _prepare(answers_clean, segments, seg_vectors)
    kp = _keyphrases_by_answer(ans)
    q_text = _question_texts(ans)
    seg_theme = np.array([NONANSWER_ID] * len(seg), dtype=object)
    seg_score = np.zeros(len(seg), dtype=np.float32)
    theme_rows: list[dict[str, Any]] = []
    centroids: dict[tuple[str, str], np.ndarray] = {}
    questions = sorted(set(seg["question_id"]) | set(ans["question_id"]))
    lang_of = answer_languages(ans)
    main = main_language(ans, lang_of, cfg.get("label_language"))
    seg_langs = [lang_of.get(a, "") for a in seg["answer_id"]]
    info: dict[str, int] = {"seed_split": 0, "seed_dropped": 0, "seed_passages_moved": 0, "seed_narrowed": 0,
                            "named_other_language": 0}
    for qid in track(questions, "themes per question", total=len(questions)):
        idx = np.flatnonzero((seg["question_id"].to_numpy() == qid) & ~seg["is_nonanswer"].to_numpy())
        rows, cents, labels, sims, q_info = _question_themes(
            qid, seg.iloc[idx], vec[idx], kp, seed_themes, cfg, q_text.get(str(qid), ""),
            [seg_langs[i] for i in idx], main, chosen,
        )
        for key, n in q_info.items():
            info[key] = info.get(key, 0) + n
        theme_ids = [r["theme_id"] for r in rows]
        for r, c in zip(rows, cents, strict=True):
            centroids[(qid, r["theme_id"])] = c
        for j, i in enumerate(idx):
            if labels[j] >= 0:
                seg_theme[i] = theme_ids[labels[j]]
                seg_score[i] = sims[j]
            else:
                seg_theme[i] = OTHER_ID
                seg_score[i] = sims[j]
        theme_rows.extend(rows)
    seg_assign = pd.DataFrame(
        {
            "segment_id": seg["segment_id"],
            "answer_id": seg["answer_id"],
            "question_id": seg["question_id"],
            "theme_id": seg_theme.astype(str),
            "score": seg_score.astype(float),
        }
    )
    held, documents = held_themes(seg_assign, cfg)
    themes = _theme_table(theme_rows, seg, seg_assign, ans, held)
    assignments = _answer_assignments(
        ans, seg, vec, seg_assign, centroids, float(cfg["secondary_margin"]), held, documents
    )
    from pipeline.themes.crossq import batch_scope_rows, theme_by_question

    tbq = theme_by_question(themes, centroids, float(cfg["cross_link_threshold"]))
    themes = pd.concat([themes, _held_sizes(batch_scope_rows(themes, seg_assign, seg), held, ans)], ignore_index=True)
    themes["languages"] = language_counts(themes, held, ans, lang_of)
    substantive = seg_assign["theme_id"] != NONANSWER_ID
    n_sub = int(substantive.sum())
    n_other = int((seg_assign["theme_id"] == OTHER_ID).sum())
    q_themes = themes[(themes["scope"] != "all") & ~themes["origin"].isin(["other"])]
    summary = {
        "questions": len(questions),
        "segments": len(seg),
        "nonanswer_segments": len(seg) - n_sub,
        "themes": int(len(q_themes)),
        "seed_themes": int((q_themes["origin"] == "seed").sum()),
        "emergent_themes": int((q_themes["origin"] == "emergent").sum()),
        "other_segments": n_other,
        "other_share": round(n_other / n_sub, 4) if n_sub else 0.0,
        "answers_with_theme": int((assignments["themes"] != "").sum()),
        "label_language": main,
        **info,
    }
    if info["named_other_language"]:
        summary["fallbacks"] = [
            f"themes: {info['named_other_language']} themes named in their answers' own language (fewer than "
            f"{int(cfg['label_min_passages'])} passages in {main!r}, the label language)"
        ]
    return ThemeResult(themes, assignments, seg_assign, tbq, summary)


def _question_themes(
    qid: str,
    qseg: pd.DataFrame,
    x: np.ndarray,
    kp: dict[str, list[str]],
    seeds: SeedThemes | None,
    cfg: dict[str, Any],
    question_text: str = "",
    langs: list[str] | None = None,
    main: str = "",
    parts_: DiscoveryParts | None = None,
) -> tuple[list[dict[str, Any]], list[np.ndarray], np.ndarray, np.ndarray, dict[str, int]]:
    """Cluster one question's substantive segments with `parts_` (default: those the params name).

    Returns theme rows and centroids (in label order), each segment's label (-1 = other), its
    cosine to its own centroid (to the nearest one for 'other') and counts of seed splits and of themes
    named from other languages than `main` (the label language; `langs`: each segment's language).
    """
    n = len(qseg)
    info = {"seed_split": 0, "seed_dropped": 0, "seed_passages_moved": 0, "seed_narrowed": 0,
            "named_other_language": 0}
    if n == 0:
        return [], [], np.zeros(0, dtype=int), np.zeros(0), info
    parts_ = parts_ or build_parts(cfg)
    langs = list(langs) if langs is not None else [""] * n
    resp = qseg["response_id"].to_numpy()
    reduced = parts_.reducer.fit_transform(x) if parts_.reducer is not None else x
    labels = np.asarray(parts_.clusterer.fit_predict(reduced), dtype=int)
    if labels.shape != (n,):
        raise ValueError(f"clusterer {parts_.clusterer!r} returned {labels.shape} labels for {n} segments")
    labels, cent = parts_.refiner.refine(x, labels, resp, k_bounds(n, cfg)[0])
    k = len(cent)
    texts = qseg["text"].tolist()
    members = [[texts[i] for i in np.flatnonzero(labels == c)] for c in range(k)]
    seeds_m = match_seeds(cent, members, seeds, cfg, x.mean(axis=0))
    labels, seeds_m, split = restrict_seeds(
        x, labels, seeds_m, seeds, texts, resp, cfg, qseg["answer_id"].to_numpy()
    )
    info.update(split)
    k = len(seeds_m)
    cent = parts.centroids(x, labels, k) if k else cent
    sims_all = x @ cent.T if k else np.zeros((n, 0))
    own = np.where(labels >= 0, sims_all[np.arange(n), np.maximum(labels, 0)] if k else 0.0, 0.0)
    if k:
        own = np.where(labels >= 0, own, sims_all.max(axis=1))
    # deterministic order: seed themes first by id, then emergent by size (desc) and first segment id
    seg_ids = qseg["segment_id"].to_numpy()
    sizes = [len(set(resp[labels == c].tolist())) for c in range(k)]
    first = [str(seg_ids[labels == c].min()) for c in range(k)]
    order = sorted(
        range(k),
        key=lambda c: (
            0 if seeds_m[c][0] >= 0 else 1,
            seeds.ids[seeds_m[c][0]] if seeds is not None and seeds_m[c][0] >= 0 else "",
            -sizes[c],
            first[c],
        ),
    )
    remap = {c: i for i, c in enumerate(order)}
    labels = np.array([remap.get(v, -1) for v in labels.tolist()], dtype=int)
    cent = cent[order] if k else cent
    seeds_m = [seeds_m[c] for c in order]
    rows, info["named_other_language"] = parts_.representation.represent(
        qid, qseg, labels, own, seeds_m, seeds, kp, question_text, langs, main
    )
    return rows, list(cent), labels, own, info


def language_counts(
    themes: pd.DataFrame, held: dict[str, set[str]], ans: pd.DataFrame, lang_of: dict[str, str]
) -> list[str]:
    """Per theme row: languages of the answers holding it, most common first ("en:40, de:7"; "?" = unknown).

    Question rows count that question's answers, batch-scope rows all answers holding the theme id.
    """
    qid = dict(zip(ans["answer_id"], ans["question_id"], strict=True))
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for aid, tids in held.items():
        g = lang_of.get(aid, "") or "?"
        for tid in tids:
            for scope in (str(qid.get(aid, "")), "all"):
                c = counts.setdefault((scope, tid), {})
                c[g] = c.get(g, 0) + 1
    out = []
    for scope, tid in zip(themes["scope"].astype(str), themes["theme_id"].astype(str), strict=True):
        c = counts.get((scope, tid), {})
        out.append(", ".join(f"{g}:{n}" for g, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))))
    return out


def held_themes(sa: pd.DataFrame, cfg: dict[str, Any]) -> tuple[dict[str, set[str]], set[str]]:
    """Themes each answer holds: any theme of its passages, but a document must say it more than in passing.

    A document (>= `document_segments` substantive passages) touches most themes of a question in one
    passage or two; counting it for all of them makes every theme "held by all documents". It holds a theme
    only with >= `document_min_passages` passages and >= `document_min_share` of its passages in it.
    Returns (themes held per answer id, ids of the answers that are documents).
    """
    sub = sa[sa["theme_id"] != NONANSWER_ID]
    total = sub.groupby("answer_id").size()
    pairs = sub[sub["theme_id"] != OTHER_ID].groupby(["answer_id", "theme_id"]).size()
    doc_n = int(cfg.get("document_segments", DEFAULTS["document_segments"]))
    held: dict[str, set[str]] = {}
    documents = {str(a) for a, t in total.items() if int(t) >= doc_n}
    for key, n in pairs.items():
        aid, tid = str(key[0]), str(key[1])  # type: ignore[index]
        if document_holds(int(n), int(total.get(aid, 0)), cfg):
            held.setdefault(aid, set()).add(tid)
    return held, documents


def _held_sizes(rows: pd.DataFrame, held: dict[str, set[str]], ans: pd.DataFrame) -> pd.DataFrame:
    """Batch-scope rows count, like the question rows, the answers that hold the theme (`held_themes`)."""
    if rows.empty:
        return rows
    resp = dict(zip(ans["answer_id"], ans["response_id"], strict=True))
    holders: dict[str, set[str]] = {}
    for aid, tids in held.items():
        for tid in tids:
            holders.setdefault(tid, set()).add(aid)
    rows = rows.copy()
    for i, tid in zip(rows.index, rows["theme_id"], strict=True):
        if tid in (OTHER_ID, NONANSWER_ID):
            continue
        mine = holders.get(str(tid), set())
        rows.loc[i, "size"] = len(mine)
        rows.loc[i, "n_respondents"] = len({resp.get(a, a) for a in mine})
    return rows


def _theme_table(
    rows: list[dict[str, Any]], seg: pd.DataFrame, sa: pd.DataFrame, ans: pd.DataFrame,
    held: dict[str, set[str]] | None = None,
) -> pd.DataFrame:
    """Add sizes (answers, segments, respondents) and the per-question other / non-answer rows.

    `size` / `n_respondents` count the answers holding the theme (`held_themes`); `n_segments` counts passages.
    """
    merged = sa.assign(response_id=seg["response_id"].to_numpy())
    if held is not None:
        keep = np.array([
            t in (OTHER_ID, NONANSWER_ID) or t in held.get(a, ())
            for a, t in zip(merged["answer_id"], merged["theme_id"], strict=True)
        ], dtype=bool)
        counted = merged.assign(
            _a=merged["answer_id"].where(keep), _r=merged["response_id"].where(keep)
        )
    else:
        counted = merged.assign(_a=merged["answer_id"], _r=merged["response_id"])
    stats = counted.groupby(["question_id", "theme_id"]).agg(
        size=("_a", "nunique"), n_segments=("segment_id", "size"), n_respondents=("_r", "nunique"),
    )
    out = []
    for r in rows:
        key = (r["scope"], r["theme_id"])
        st = stats.loc[key] if key in stats.index else None
        out.append(
            {
                **r,
                "size": int(st["size"]) if st is not None else 0,
                "n_segments": int(st["n_segments"]) if st is not None else 0,
                "n_respondents": int(st["n_respondents"]) if st is not None else 0,
            }
        )
    for stat_key, st in stats.iterrows():
        qid, tid = (str(v) for v in stat_key)  # type: ignore[attr-defined]
        if tid in (OTHER_ID, NONANSWER_ID):
            out.append(
                {
                    "theme_id": tid, "scope": qid,
                    "label": "Other / unclear" if tid == OTHER_ID else "Non-answers",
                    "keywords": "", "origin": "other", "seed_id": "", "seed_score": 0.0,
                    "description": "Segments close to no theme" if tid == OTHER_ID
                    else "Empty, 'N/A', 'see attachment' and similar segments",
                    "quotes": "[]", "size": int(st["size"]), "n_segments": int(st["n_segments"]),
                    "n_respondents": int(st["n_respondents"]),
                }
            )
    cols = ["theme_id", "scope", "label", "keywords", "size", "n_segments", "n_respondents", "origin",
            "seed_id", "description", "quotes", "seed_score"]
    df = pd.DataFrame(out, columns=cols)
    df["_o"] = df["origin"].map({"seed": 0, "emergent": 1, "other": 2}).fillna(3)
    df = df.sort_values(["scope", "_o", "theme_id"], kind="stable").drop(columns="_o")
    return df.reset_index(drop=True)


def _answer_assignments(
    ans: pd.DataFrame,
    seg: pd.DataFrame,
    vec: np.ndarray,
    sa: pd.DataFrame,
    centroids: dict[tuple[str, str], np.ndarray],
    margin: float,
    held: dict[str, set[str]] | None = None,
    documents: set[str] | None = None,
) -> pd.DataFrame:
    """Answer themes = themes it holds (`held_themes`), best score first; score_<theme> = max segment cosine.

    Secondary themes (within `margin` of the best score) are added for short answers only: a document's
    maximum passage cosine is high for nearly every theme.
    """
    theme_ids = list(dict.fromkeys(t for (_, t) in sorted(centroids)))
    col_of = {t: i for i, t in enumerate(theme_ids)}
    scores = np.zeros((len(ans), len(theme_ids)), dtype=np.float32)
    row_of = {a: i for i, a in enumerate(ans["answer_id"])}
    seg_rows = np.array([row_of.get(a, -1) for a in seg["answer_id"]])
    qids = seg["question_id"].to_numpy()
    nonans = seg["is_nonanswer"].to_numpy()
    for qid in sorted(set(qids)):
        keys = [k for k in sorted(centroids) if k[0] == qid]
        if not keys:
            continue
        mask = (qids == qid) & ~nonans & (seg_rows >= 0)
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        c = np.stack([centroids[k] for k in keys])
        s = vec[idx] @ c.T
        cols = [col_of[k[1]] for k in keys]
        for j, col in enumerate(cols):
            np.maximum.at(scores[:, col], seg_rows[idx], s[:, j])
    # themes per answer from assigned segments, ordered by the answer's score for that theme
    assigned: dict[str, set[str]] = {}
    for aid, tid in zip(sa["answer_id"], sa["theme_id"], strict=True):
        if tid not in (OTHER_ID, NONANSWER_ID):
            assigned.setdefault(aid, set()).add(tid)
    documents = documents or set()
    if held is not None:
        assigned = {a: set(ts) for a, ts in held.items()}
    theme_lists = []
    q_cols = {q: [col_of[t] for (qq, t) in sorted(centroids) if qq == q] for q in set(ans["question_id"])}
    for i, (aid, qid) in enumerate(zip(ans["answer_id"], ans["question_id"], strict=True)):
        ts = set(assigned.get(aid, set()))
        if ts and margin > 0 and aid not in documents:
            # secondary themes: close to the answer's best theme although no segment chose them
            cols = q_cols.get(qid, [])
            best = max(scores[i, col_of[t]] for t in ts)
            ts |= {theme_ids[c] for c in cols if scores[i, c] >= best - margin}
        theme_lists.append(";".join(sorted(ts, key=lambda t: (-scores[i, col_of[t]], t))))
    # the score block (answers x every question's themes: 200 MB at 50k answers) is rounded in place and
    # wrapped, not copied: the id columns go in front of it rather than concatenated with it
    np.round(scores, 4, out=scores)
    out = pd.DataFrame(scores, columns=[f"score_{t}" for t in theme_ids], copy=False)
    for pos, name in enumerate(["answer_id", "response_id", "question_id"]):
        out.insert(pos, name, ans[name])  # `ans` has a RangeIndex, like `out`
    out.insert(3, "themes", theme_lists)
    return out
