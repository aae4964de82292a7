"""`wsis label-sheet`: an XLSX of the answers the tagger is least sure about, for analysts to correct.

The sheet `labels` holds the current predictions in editable `action_lines` / `sdgs` columns; the sheet
`instructions` says how to edit it. `wsis train-tagger --labels sheet.xlsx` reads it back. Cells starting
with = + - @ are prefixed with an apostrophe so spreadsheet programs never run them as formulas."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.io import atomic_path
from pipeline.safety import neutralise_formula as neutralise  # labelsheet.neutralise: formula-safe cells
from pipeline.tagger.train import load_model, load_real_head, resolve_model_dir, tag_params

log = logging.getLogger(__name__)


INSTRUCTIONS = [
    "How to use this sheet",
    "1. Each row of the 'labels' sheet is an answer the tagger was least sure about (scores near thresholds).",
    "2. Edit the columns action_lines and sdgs: codes separated by ';' (e.g. C5;C7.e-health and 4;9).",
    "   Action Lines: C1..C11 and the C7 sub-areas C7.e-government, C7.e-business, C7.e-learning,",
    "   C7.e-health, C7.e-employment, C7.e-environment, C7.e-agriculture, C7.e-science. SDGs: 1..17.",
    "3. Leave both cells empty when the answer addresses none of them.",
    "4. Delete the rows you did not check: every remaining row is used as a correct label.",
    "5. Retrain: wsis train-tagger --labels this_file.xlsx. About 30% of the rows (chosen by a hash of answer_id)",
    "   are kept to check the new model against the current one; it replaces the current one only if it is better.",
    "   Unknown codes are reported with their row number; fix them and rerun.",
    "Columns model_* and uncertain_labels show what the model predicted and where it hesitated.",
]


def select_uncertain(
    tags: pd.DataFrame, thresholds: dict[str, dict[str, float]], n: int, exclude: np.ndarray | None = None,
) -> pd.DataFrame:
    """The `n` rows whose closest score is nearest its label's threshold (ties: by answer_id). `thresholds`:
    decision basis -> label -> threshold (`decision_thresholds`); each row is measured against those of its
    `decided_by`, a tags file without that column against the "head" ones."""
    default = thresholds["head"]
    cols = [f"score_{lab}" for lab in default if f"score_{lab}" in tags]
    if not cols:
        raise ValueError("tags have no score columns")
    scores = tags[cols].to_numpy(dtype=float)
    labels = [c[len("score_"):] for c in cols]
    basis = tags["decided_by"].astype(str).to_numpy() if "decided_by" in tags else np.full(len(tags), "head")
    thr = np.empty((len(tags), len(labels)))
    for name in set(basis.tolist()):
        table = thresholds.get(str(name), default)
        thr[basis == name] = [table[lab] for lab in labels]
    dist = np.abs(scores - thr)
    nearest = np.argsort(dist, axis=1)[:, :3]
    out = tags.assign(
        margin=dist.min(axis=1),
        uncertain_labels=[
            "; ".join(f"{cols[j][6:]} {scores[i, j]:.2f} (thr {thr[i, j]:.2f})" for j in row)
            for i, row in enumerate(nearest)
        ],
    )
    if exclude is not None:
        out = out[~exclude]
    return out.sort_values(["margin", "answer_id"], kind="stable").head(n)


def build_sheet(tags: pd.DataFrame, answers: pd.DataFrame, thresholds: dict[str, dict[str, float]],
                n: int) -> pd.DataFrame:
    text_col = "text_redacted" if "text_redacted" in answers else (
        "text_clean" if "text_clean" in answers else "answer")
    merged = tags.merge(answers[["answer_id", text_col]], on="answer_id", how="left")
    exclude = merged[text_col].fillna("").astype(str).str.strip().eq("").to_numpy().copy()
    if "is_nonanswer" in answers:
        non = set(answers.loc[answers["is_nonanswer"].astype(bool), "answer_id"].astype(str))
        exclude = exclude | merged["answer_id"].astype(str).isin(non).to_numpy()
    pick = select_uncertain(merged, thresholds, n, exclude)
    sheet = pd.DataFrame({
        "answer_id": pick["answer_id"].astype(str), "response_id": pick["response_id"].astype(str),
        "question_id": pick["question_id"].astype(str), "text": pick[text_col].fillna("").astype(str),
        "action_lines": pick["action_lines"], "sdgs": pick["sdgs"],
        "model_action_lines": pick["action_lines"], "model_sdgs": pick["sdgs"],
        "uncertain_labels": pick["uncertain_labels"], "margin": pick["margin"].round(3),
    })
    return sheet.reset_index(drop=True)


def write_sheet(sheet: pd.DataFrame, output: Path) -> Path:
    """XLSX with sheets `labels` (first, read back by train-tagger) and `instructions`."""
    safe = sheet.copy()
    for col in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[col]):
            safe[col] = safe[col].astype(str).map(neutralise)
    with atomic_path(output) as tmp, pd.ExcelWriter(tmp, engine="openpyxl") as xl:
        safe.to_excel(xl, sheet_name="labels", index=False)
        pd.DataFrame({"instructions": INSTRUCTIONS}).to_excel(xl, sheet_name="instructions", index=False)
        ws = xl.sheets["labels"]
        widths = {"A": 22, "D": 90, "E": 24, "F": 14, "G": 24, "H": 14, "I": 50}
        for col, w in widths.items():
            ws.column_dimensions[col].width = w
        ws.freeze_panes = "B2"
    return Path(output)


def decision_thresholds(params: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Decision basis (tags.parquet `decided_by`) -> label -> the score `wsis tag` decides it by: "head" the
    real-answer head's thresholds (when the version has a head), "rules" and "passages" the decision rules'
    (a document's passages are judged against them). How near a tag is to flipping is measured against these,
    not against the written-example model's own thresholds."""
    from pipeline.tagger.stage import DecisionRules, effective_thresholds, with_decision_params

    section = tag_params(params)
    tagger, folder = load_model(params)
    tagger = with_decision_params(tagger, section)
    rules = DecisionRules.from_params(section)
    head = load_real_head(folder, tagger, section)

    def table(thr: np.ndarray) -> dict[str, float]:
        return {lab: float(t) for lab, t in zip(tagger.label_ids, thr, strict=True)}

    by_rules = table(effective_thresholds(tagger, rules, None))
    return {"head": table(effective_thresholds(tagger, rules, head)), "rules": by_rules, "passages": by_rules,
            "legacy": table(effective_thresholds(tagger, None))}


def run(batch_dir: Path, output: Path, params: dict[str, Any], n: int) -> dict[str, Any]:
    batch_dir = Path(batch_dir)
    tags_file, ans_file = batch_dir / "tags.parquet", batch_dir / "answers_clean.parquet"
    for f in (tags_file, ans_file):
        if not f.exists():
            raise InputError(str(f), None, "missing: run `wsis tag` first")
    sheet = build_sheet(pd.read_parquet(tags_file), pd.read_parquet(ans_file), decision_thresholds(params), int(n))
    folder = resolve_model_dir(params, None)
    write_sheet(sheet, Path(output))
    return {"rows": len(sheet), "output": str(output), "model": folder.name,
            "max_margin": float(sheet["margin"].max()) if len(sheet) else None}
