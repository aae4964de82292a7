"""Analyst edits of discovered themes, applied after discovery on every re-run (so no fix is lost).

An edits file is YAML with a list under `edits:`; each edit has an `action`, the theme(s) it acts on, an
optional `question` (limit it to one question's scope) and a `comment` (why; shown in the report's edit log):

```yaml
edits:
  - {action: rename, theme: Q2.emergent-1, label: Funding the last mile, description: ..., comment: ...}
  - {action: merge, themes: [Q2.emergent-1, Q2.emergent-3], into: Q2.emergent-1, label: ..., comment: ...}
  - action: split                       # members go to the first part whose keywords (or their plurals) they contain,
    theme: Q3.emergent-2                # else (when some part has example answers) to the part whose
    into:                               # examples' centre is nearest; the rest stay in the theme
      - {id: Q3.teachers, label: Teacher training, keywords: [teacher, teachers]}
      - {id: Q3.curricula, label: Curricula, examples: ["r12::Q3"]}
    comment: ...
  - {action: move, answers: ["r5::Q2"], from: Q2.emergent-1, to: connectivity, comment: ...}
  - {action: drop, theme: Q1.emergent-4, comment: ...}   # its answers keep their other themes, or go to 'other'
```

`apply_edits` is pure: it returns new frames and a log with one row per edit saying whether it applied and to
how many answers; an edit whose theme no longer exists is reported as not applied, never silently ignored.
Counts (`size`, `n_respondents`, `n_segments`), quotes, score columns and segment assignments follow the edits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline import config
from pipeline.errors import InputError

ACTIONS = ("rename", "merge", "split", "move", "drop")
OTHER = "other"
_ALLOWED = {
    "rename": {"action", "theme", "question", "label", "description", "comment"},
    "merge": {"action", "themes", "into", "question", "label", "description", "comment"},
    "split": {"action", "theme", "question", "into", "comment"},
    "move": {"action", "answers", "from", "to", "comment"},
    "drop": {"action", "theme", "question", "comment"},
}
_PART_KEYS = {"id", "label", "description", "keywords", "examples"}
LOG_COLUMNS = ["edit", "action", "themes", "question", "comment", "status", "answers_affected"]


@dataclass(frozen=True)
class Edit:
    """One validated edit (the raw mapping is kept for the log)."""

    number: int
    action: str
    spec: dict[str, Any]

    @property
    def comment(self) -> str:
        return str(self.spec.get("comment") or "")


@dataclass
class EditResult:
    themes: pd.DataFrame
    theme_assignments: pd.DataFrame
    segment_assignments: pd.DataFrame
    log: pd.DataFrame
    summary: dict[str, int] = field(default_factory=dict)


def load_edits(path: Path | str) -> list[Edit]:
    """Read and validate an edits file; errors name the file, the edit number and the problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), None, "edits file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"not valid YAML ({exc.__class__.__name__})") from exc
    items = data.get("edits") if isinstance(data, dict) else data
    if items is None:
        return []
    if not isinstance(items, list):
        raise InputError(str(path), None, "expected a list of edits under 'edits:'")
    return [validate_edit(item, i, str(path)) for i, item in enumerate(items, start=1)]


def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int):
        return [str(value)]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise ValueError("expected a theme id or a list of theme ids")


def validate_edit(item: Any, number: int, where: str = "edits") -> Edit:
    record = f"edit {number}"
    if not isinstance(item, dict):
        raise InputError(where, record, "each edit is a mapping with an 'action'")
    action = str(item.get("action", "")).strip().lower()
    if action not in ACTIONS:
        raise InputError(where, record, f"unknown action {item.get('action')!r} (one of {', '.join(ACTIONS)})")
    unknown = sorted(set(item) - _ALLOWED[action])
    if unknown:
        raise InputError(where, record, f"unknown key(s) for {action}: {', '.join(map(str, unknown))}")
    spec = dict(item)
    try:
        if action in {"rename", "split", "drop"} and not _ids(spec.get("theme")):
            raise ValueError("needs 'theme'")
        if action == "rename" and not (spec.get("label") or spec.get("description")):
            raise ValueError("needs a new 'label' or 'description'")
        if action == "merge" and len(_ids(spec.get("themes"))) < 2:
            raise ValueError("needs at least two 'themes'")
        if action == "move" and (not _ids(spec.get("answers")) or not spec.get("to")):
            raise ValueError("needs 'answers' (answer ids: response_id::question_id) and 'to'")
        if action == "split":
            parts = spec.get("into")
            if not isinstance(parts, list) or not parts:
                raise ValueError("needs 'into': a list of parts with id, label and keywords or examples")
            for k, part in enumerate(parts, start=1):
                if not isinstance(part, dict) or not part.get("id"):
                    raise ValueError(f"part {k} needs an 'id'")
                extra = sorted(set(part) - _PART_KEYS)
                if extra:
                    raise ValueError(f"part {k} has unknown key(s): {', '.join(map(str, extra))}")
                if not part.get("keywords") and not part.get("examples"):
                    raise ValueError(f"part {k} needs 'keywords' or 'examples'")
    except ValueError as exc:
        raise InputError(where, record, f"{action}: {exc}") from exc
    return Edit(number, action, spec)


# --------------------------------------------------------------------------------------------- applying
def _split_ids(value: Any) -> list[str]:
    return [t for t in str(value or "").split(";") if t]


class _State:
    """Mutable working copies: per answer its ordered theme list and scores; per (scope, theme) its row."""

    def __init__(self, themes: pd.DataFrame, assignments: pd.DataFrame, seg_assign: pd.DataFrame) -> None:
        self.assign = assignments.copy()
        self.lists: dict[str, list[str]] = dict(zip(
            self.assign["answer_id"].astype(str), self.assign["themes"].map(_split_ids), strict=True))
        self.question = dict(zip(self.assign["answer_id"].astype(str), self.assign["question_id"].astype(str),
                                 strict=True))
        self.rows: dict[tuple[str, str], dict[str, Any]] = {
            (str(r["scope"]), str(r["theme_id"])): {str(k): v for k, v in r.items()}
            for r in themes.to_dict("records")
        }
        self.order = list(self.rows)
        self.seg = seg_assign.copy()

    def scopes_of(self, tid: str, question: str | None) -> list[str]:
        return [s for s, t in self.order if t == tid and s != "all" and (question is None or s == question)]

    def members(self, tid: str, scope: str) -> list[str]:
        return [a for a, ts in self.lists.items() if tid in ts and self.question[a] == scope]

    def score_col(self, tid: str) -> str:
        col = f"score_{tid}"
        if col not in self.assign.columns:
            self.assign[col] = 0.0
        return col

    def add_row(self, scope: str, tid: str, base: dict[str, Any], **changes: Any) -> None:
        key = (scope, tid)
        if key not in self.rows:
            self.order.insert(self.order.index((scope, str(base["theme_id"]))) + 1
                              if (scope, str(base["theme_id"])) in self.order else len(self.order), key)
        self.rows[key] = {**base, "theme_id": tid, **changes}


def apply_edits(
    edits: list[Edit],
    themes: pd.DataFrame,
    assignments: pd.DataFrame,
    segment_assignments: pd.DataFrame,
    texts: dict[str, str],
    vectors: dict[str, np.ndarray] | None = None,
) -> EditResult:
    """Apply `edits` in order to the themes stage's outputs (see the module docstring); inputs are not changed."""
    st = _State(themes, assignments, segment_assignments)
    log: list[dict[str, Any]] = []
    for edit in edits:
        status, affected = _apply_one(edit, st, texts, vectors or {})
        spec = edit.spec
        names = _ids(spec.get("themes")) or _ids(spec.get("theme")) or [str(spec.get("to", ""))]
        log.append({"edit": edit.number, "action": edit.action, "themes": "; ".join(names),
                    "question": str(spec.get("question") or ""), "comment": edit.comment, "status": status,
                    "answers_affected": affected})
    return _finish(st, pd.DataFrame(log, columns=LOG_COLUMNS))


def _apply_one(edit: Edit, st: _State, texts: dict[str, str], vectors: dict[str, np.ndarray]) -> tuple[str, int]:
    spec = edit.spec
    question = str(spec["question"]) if spec.get("question") else None
    if edit.action == "move":
        return _move(spec, st)
    tids = _ids(spec.get("themes")) if edit.action == "merge" else _ids(spec.get("theme"))
    missing = [t for t in tids if not st.scopes_of(t, question)]
    if edit.action != "merge" and missing or edit.action == "merge" and len(tids) - len(missing) < 2:
        where = f" in {question}" if question else ""
        return f"not applied: theme {', '.join(missing)} no longer exists{where}", 0
    if edit.action == "rename":
        n = 0
        scopes = st.scopes_of(tids[0], question) + (["all"] if question is None and ("all", tids[0]) in st.rows
                                                     else [])
        for scope in scopes:
            row = st.rows[(scope, tids[0])]
            row.update({k: str(spec[k]) for k in ("label", "description") if spec.get(k)})
            row["edited"] = True
            n += len(st.members(tids[0], scope))
        return "applied", n
    if edit.action == "drop":
        n = 0
        for scope in st.scopes_of(tids[0], question):
            for a in st.members(tids[0], scope):
                st.lists[a] = [t for t in st.lists[a] if t != tids[0]]
                n += 1
            _reassign_segments(st, scope, {tids[0]}, OTHER)
            st.rows.pop((scope, tids[0]))
            st.order.remove((scope, tids[0]))
        return "applied", n
    if edit.action == "merge":
        return _merge(spec, tids, question, st, missing)
    return _split(spec, tids[0], question, st, texts, vectors)


def _move(spec: dict[str, Any], st: _State) -> tuple[str, int]:
    target, source = str(spec["to"]), (str(spec["from"]) if spec.get("from") else None)
    moved, problems = 0, []
    for a in _ids(spec.get("answers")):
        if a not in st.lists:
            problems.append(f"answer {a} not in the batch")
            continue
        scope = st.question[a]
        if target != OTHER and (scope, target) not in st.rows:
            problems.append(f"theme {target} does not exist in {scope}")
            continue
        if source is not None and source not in st.lists[a]:
            problems.append(f"answer {a} is not in {source}")
            continue
        dropped = {source} if source else set(st.lists[a])
        kept = [t for t in st.lists[a] if t not in dropped and t != target]
        st.lists[a] = kept if target == OTHER else [target, *kept]
        col = st.score_col(target) if target != OTHER else None
        if col is not None:
            st.assign.loc[st.assign["answer_id"].astype(str) == a, col] = 1.0
        seg = st.seg["answer_id"].astype(str) == a
        st.seg.loc[seg & st.seg["theme_id"].astype(str).isin(dropped | {OTHER}), "theme_id"] = target
        for t in dropped:  # a moved answer no longer illustrates the theme it left
            row = st.rows.get((scope, t))
            if row is not None:
                quotes = json.loads(str(row.get("quotes") or "[]"))
                row["quotes"] = json.dumps([q for q in quotes if str(q.get("segment_id", "")).split("#")[0] != a],
                                           ensure_ascii=False)
        moved += 1
    if not moved:
        return "not applied: " + "; ".join(problems), 0
    return ("applied" if not problems else "partly applied: " + "; ".join(problems)), moved


def _merge(spec: dict[str, Any], tids: list[str], question: str | None, st: _State,
           missing: list[str]) -> tuple[str, int]:
    present = [t for t in tids if t not in missing]
    into = str(spec.get("into") or present[0])
    sources = [t for t in present if t != into]
    n = 0
    for scope in sorted({s for t in present for s in st.scopes_of(t, question)}):
        here = [t for t in present if (scope, t) in st.rows]
        if len(here) < 2 and into not in here:
            continue
        base = st.rows.get((scope, into)) or st.rows[(scope, here[0])]
        quotes: list[list[dict[str, str]]] = [json.loads(str(st.rows[(scope, t)].get("quotes") or "[]"))
                                              for t in ([into] if (scope, into) in st.rows else []) + sources
                                              if (scope, t) in st.rows]
        col = st.score_col(into)
        for t in sources:
            if (scope, t) not in st.rows:
                continue
            src_col = f"score_{t}"
            in_scope = st.assign["question_id"].astype(str) == scope
            if src_col in st.assign.columns:
                st.assign.loc[in_scope, col] = np.maximum(st.assign.loc[in_scope, col].astype(float),
                                                          st.assign.loc[in_scope, src_col].astype(float))
            st.rows.pop((scope, t))
            st.order.remove((scope, t))
        for a, ts in st.lists.items():
            if st.question[a] == scope and any(t in ts for t in here):
                first = min(ts.index(t) for t in here if t in ts)
                rest = [t for t in ts if t not in here]
                st.lists[a] = rest[:first] + [into] + rest[first:]
                n += 1
        _reassign_segments(st, scope, set(sources), into)
        changes: dict[str, Any] = {"quotes": json.dumps(_round_robin(quotes), ensure_ascii=False),
                                   "edited": True}
        changes.update({k: str(spec[k]) for k in ("label", "description") if spec.get(k)})
        st.add_row(scope, into, base, **changes)
    status = "applied" if not missing else f"partly applied: theme {', '.join(missing)} no longer exists"
    return status, n


def _round_robin(groups: list[list[dict[str, str]]], n: int = 5) -> list[dict[str, str]]:
    """Quotes of merged themes, best of each in turn, one per respondent."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for rank in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if rank < len(group) and group[rank].get("response_id") not in seen and len(out) < n:
                seen.add(str(group[rank].get("response_id")))
                out.append(group[rank])
    return out


def keyword_pattern(keywords: list[Any]) -> re.Pattern[str]:
    """Whole words or phrases of a split part, in lower case, with their plural and possessive forms: an analyst
    who writes `regulation` means "regulations" too (but `art` never matches "artificial")."""
    alts = "|".join(re.escape(str(k).lower().strip()) for k in keywords if str(k).strip())
    return re.compile(r"\b(?:" + alts + r")(?:s|es|'s|’s)?\b")


def _split(spec: dict[str, Any], tid: str, question: str | None, st: _State, texts: dict[str, str],
           vectors: dict[str, np.ndarray]) -> tuple[str, int]:
    parts = spec["into"]
    patterns = [
        keyword_pattern(p["keywords"]) if p.get("keywords") else None for p in parts
    ]
    centres: list[np.ndarray | None] = []
    for p in parts:
        vecs = [vectors[a] for a in _ids(p.get("examples")) if a in vectors]
        c = np.mean(vecs, axis=0) if vecs else None
        centres.append(c / (np.linalg.norm(c) or 1.0) if c is not None else None)
    n = 0
    for scope in st.scopes_of(tid, question):
        base = st.rows[(scope, tid)]
        quotes = json.loads(str(base.get("quotes") or "[]"))
        for part in parts:
            st.add_row(scope, str(part["id"]), base, label=str(part.get("label") or part["id"]),
                       description=str(part.get("description") or ""), edited=True, quotes="[]",
                       keywords=";".join(map(str, part.get("keywords") or [])) or base.get("keywords", ""))
            st.score_col(str(part["id"]))
        moved: dict[str, str] = {}
        for a in st.members(tid, scope):
            text = texts.get(a, "").lower()
            choice = next((str(p["id"]) for p, pat in zip(parts, patterns, strict=True) if pat and pat.search(text)),
                          None)
            if choice is None and any(c is not None for c in centres) and a in vectors:
                sims = [float(vectors[a] @ c) if c is not None else -2.0 for c in centres]
                choice = str(parts[int(np.argmax(sims))]["id"])
            if choice is None:
                continue
            ts = st.lists[a]
            st.lists[a] = [choice if t == tid else t for t in ts]
            src = f"score_{tid}"
            if src in st.assign.columns:
                st.assign.loc[st.assign["answer_id"].astype(str) == a, f"score_{choice}"] = \
                    st.assign.loc[st.assign["answer_id"].astype(str) == a, src]
            moved[a] = choice
            n += 1
        seg = (st.seg["theme_id"].astype(str) == tid) & st.seg["answer_id"].astype(str).isin(moved)
        st.seg.loc[seg, "theme_id"] = st.seg.loc[seg, "answer_id"].astype(str).map(moved)
        for part in parts:
            pid = str(part["id"])
            mine = [q for q in quotes if str(q.get("segment_id", "")).split("#")[0] in moved
                    and moved[str(q.get("segment_id", "")).split("#")[0]] == pid]
            st.rows[(scope, pid)]["quotes"] = json.dumps(mine, ensure_ascii=False)
        base["quotes"] = json.dumps([q for q in quotes if str(q.get("segment_id", "")).split("#")[0] not in moved],
                                    ensure_ascii=False)
        if not any(tid in ts for a, ts in st.lists.items() if st.question[a] == scope):
            st.rows.pop((scope, tid))
            st.order.remove((scope, tid))
    return "applied", n


def edit_theme_result(result: Any, edits: list[Edit], answers: pd.DataFrame, answer_vectors: np.ndarray,
                      cross_link_threshold: float | None = None) -> Any:
    """The themes stage's `ThemeResult` with `edits` applied, its cross-question table rebuilt from the edited
    themes (centroids = mean answer vector of each theme's members), and the edit log in `summary`/`edit_log`."""
    from pipeline.themes.crossq import theme_by_question
    from pipeline.themes.discovery import ThemeResult

    ids = answers["answer_id"].astype(str).tolist()
    vectors = dict(zip(ids, np.asarray(answer_vectors, dtype=np.float32), strict=True))
    text_col = "text_clean" if "text_clean" in answers.columns else "answer"
    texts = dict(zip(ids, answers[text_col].fillna("").astype(str), strict=True))
    done = apply_edits(edits, result.themes, result.theme_assignments, result.segment_assignments, texts, vectors)
    cents = _centroids(done.theme_assignments, vectors)
    tbq = (theme_by_question(done.themes, cents) if cross_link_threshold is None
           else theme_by_question(done.themes, cents, cross_link_threshold))
    summary = {**result.summary, **done.summary}
    edited = ThemeResult(done.themes, done.theme_assignments, done.segment_assignments, tbq, summary)
    return edited, done.log


def _centroids(assign: pd.DataFrame, vectors: dict[str, np.ndarray]) -> dict[tuple[str, str], np.ndarray]:
    """(question, theme) -> unit mean vector of its member answers (what crossq links emergent themes by)."""
    sums: dict[tuple[str, str], np.ndarray] = {}
    for a, q, tlist in zip(assign["answer_id"].astype(str), assign["question_id"].astype(str), assign["themes"],
                           strict=True):
        v = vectors.get(a)
        if v is None or not np.any(v):
            continue
        for t in _split_ids(tlist):
            sums[(q, t)] = sums.get((q, t), 0) + v
    return {k: v / (np.linalg.norm(v) or 1.0) for k, v in sums.items()}


def _reassign_segments(st: _State, scope: str, old: set[str], new: str) -> None:
    seg = (st.seg["question_id"].astype(str) == scope) & st.seg["theme_id"].astype(str).isin(old)
    st.seg.loc[seg, "theme_id"] = new


def _finish(st: _State, log: pd.DataFrame) -> EditResult:
    """Write the lists back and recount every theme row from its members."""
    assign = st.assign
    assign["themes"] = [";".join(dict.fromkeys(st.lists[str(a)])) for a in assign["answer_id"]]
    rid = dict(zip(assign["answer_id"].astype(str), assign["response_id"].astype(str), strict=True))
    seg_counts: dict[tuple[str, str], int] = {}
    if len(st.seg):
        pairs = zip(st.seg["question_id"].astype(str), st.seg["theme_id"].astype(str), strict=True)
        for pair in pairs:
            seg_counts[pair] = seg_counts.get(pair, 0) + 1
    rows = []
    scoped = {t for sc, t in st.order if sc != "all"}
    for key in st.order:
        row = dict(st.rows[key])
        scope, tid = key
        if scope == "all" and tid not in scoped:
            continue  # a batch-wide row of a theme that no question has any more
        members = ([a for a, ts in st.lists.items() if tid in ts] if scope == "all" else st.members(tid, scope))
        row["size"] = len(members)
        row["n_respondents"] = len({rid[a] for a in members})
        if "n_segments" in row:
            row["n_segments"] = int(sum(n for (q, t), n in seg_counts.items() if t == tid and scope in ("all", q)))
        row["edited"] = bool(row.get("edited", False))
        rows.append(row)
    themes = pd.DataFrame(rows, columns=list(rows[0]) if rows else None)
    live = {f"score_{t}" for _s, t in st.order}
    assign = assign.drop(columns=[c for c in assign.columns if c.startswith("score_") and c not in live])
    applied = int(log["status"].str.startswith(("applied", "partly")).sum()) if len(log) else 0
    return EditResult(themes, assign, st.seg, log,
                      {"edits": len(log), "edits_applied": applied, "edits_not_applied": len(log) - applied})


def edits_file(params: dict[str, Any], given: Path | None = None) -> Path | None:
    """The analyst's edits file: `--edits`, else `themes.edits` in params.yaml (relative to the project)."""
    if given is not None:
        return Path(given)
    value = (params.get("themes", {}) or {}).get("edits")
    if not value or str(value).strip().lower() in {"none", "false"}:
        return None
    path = Path(str(value))
    return path if path.is_absolute() else config.PROJECT_ROOT / path
