"""Where `embed.backend: auto` should switch to the multilingual encoder (`embed.auto_multilingual_share`).

Two measurements, nothing tuned on the batches the issue reports on (EU q49 + q57, NETmundial):
1. **Share of non-English real answers** (the clean stage's language detector, `embed.stage.non_english_share`)
   per EU AI White Paper question and on English consultations (AU Q20, BC Q16, Global Dialogues sample):
   where multilingual batches and English ones sit.
2. **What the multilingual encoder costs English text**: discovery recovery of the coders' codes on the AU dev
   suite (`discovery_recovery.py`'s metric and bootstrap), English int8 encoder vs multilingual, same answers.

The single-language-theme share of a 20%-non-English batch with each encoder comes from `themes_multilingual.py`
on two `wsis run` folders of EU q18 + q42 (see `results/themes_multilingual.md`).

    .venv/bin/python benchmarks/multilingual_threshold.py [--out multilingual_threshold.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, emit, git_head, shared_dir  # noqa: E402

EU_QUESTIONS = (18, 25, 29, 42, 49, 57, 62, 64, 66, 71)
GD_SAMPLE = 5000


def shares() -> dict[str, float]:
    from pipeline import config
    from pipeline.clean.core import clean_params
    from pipeline.clean.language import LanguageDetector
    from pipeline.embed.stage import non_english_share

    root = shared_dir() / "corpora"
    detect = LanguageDetector(languages=tuple(clean_params(config.load_params())["languages"]))
    eu = pd.read_csv(root / "eu-ai-white-paper-consultation-2020" / "open_ended_long.csv")
    batches = {f"eu_q{q}": eu.loc[eu["question_col"] == q, "answer"] for q in EU_QUESTIONS}
    bc = pd.read_csv(root / "bc-ai-survey-2025" / "bc_ai_survey_responses.csv")
    batches["bc_q16"] = bc["Q16_Indigenous_communities_involvement_AI_text_OE"]
    au = pd.read_csv(root / "au-safe-responsible-ai-2023" / "srai_shortened.csv")
    batches["au_q20"] = au.loc[au["sub_label"].str.startswith("Q20"), "sub_value"]
    gd = pd.read_csv(root / "cip-global-dialogues" / "GD1-3_open_responses_with_remesh_tags.csv", nrows=GD_SAMPLE)
    text_col = next(c for c in gd.columns if c.lower() in ("response", "answer", "text", "response_text"))
    batches[f"gd_first_{GD_SAMPLE}"] = gd[text_col]
    out = {}
    for name, col in batches.items():
        texts = col.dropna().astype(str).tolist()
        out[name] = round(non_english_share(pd.DataFrame({"language": detect.detect_many(texts)})), 3)
        print(name, len(texts), out[name], flush=True)
    return out


def recovery(n_boot: int) -> dict[str, Any]:
    import discovery_recovery as D

    from pipeline import config
    from pipeline.themes.stage import make_encoder

    out: dict[str, Any] = {}
    preds: dict[tuple[str, str], Any] = {}
    for backend in ("onnx", "multilingual"):
        params = config.load_params(overrides={"embed": {"backend": backend}})
        enc = make_encoder(params)
        for q, case in D.load_suite(params, enc).items():
            pred, summary = D.predict(case, params, enc)
            rec, other = D.scores(case["gold"], pred)
            preds[(backend, q)] = (case["gold"], pred)
            out[f"{backend}:{q}"] = {"recovery": round(rec, 3), "other": round(other, 3), "themes": summary["themes"]}
            print(backend, q, out[f"{backend}:{q}"], flush=True)
    for q in sorted({q for _, q in preds}):
        gold = preds[("onnx", q)][0]
        b = D.boot(gold, [preds[("onnx", q)][1], preds[("multilingual", q)][1]], n_boot, seed=11)
        diff = out[f"multilingual:{q}"]["recovery"] - out[f"onnx:{q}"]["recovery"]
        out[f"multilingual_minus_english:{q}"] = {"diff": round(diff, 3), "ci": D.ci(b[:, 1] - b[:, 0])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--out", default="multilingual_threshold.json")
    args = ap.parse_args()
    result = {"commit": git_head(), "non_english_share": shares(), "recovery_au": recovery(args.n_boot)}
    emit(result, RESULTS_DIR / args.out)


if __name__ == "__main__":
    main()
