"""Theme names with half or more function words demoted (issue 14, "0 labels that are half or more stop words"):
which labels the rule changes, and a blind paired review of those changes.

Naming does not change the clustering, so the same batch folders are re-named by two code trees (`labels`, run once
from a worktree of the commit before the rule and once from this one); `packet` writes the themes whose label
changed (their top passages, redacted, deduplicated, and the two names as X / Y in seeded random order) for a
reviewer who sees nothing else; `score` compares the verdicts by side.

    git worktree add /tmp/before <commit before>
    (cd /tmp/before && PYTHONPATH=. python $REPO/benchmarks/theme_names_glue.py labels --json /tmp/old.json BATCH...)
    python benchmarks/theme_names_glue.py labels --json /tmp/new.json BATCH...
    python benchmarks/theme_names_glue.py packet --old /tmp/old.json --new /tmp/new.json --packet /tmp/names/packet.md \
        --key benchmarks/results/theme_names_glue_key.csv
    # a reviewer writes verdicts.csv: item,x_verdict,y_verdict,better,reason
    python benchmarks/theme_names_glue.py score --key benchmarks/results/theme_names_glue_key.csv \
        --verdicts benchmarks/results/theme_names_glue_verdicts.csv --json benchmarks/results/theme_names_glue.json

The packet holds respondents' text and stays outside the repository; key and verdicts hold ids, generated labels and
the reviewer's words only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import theme_names_review as tnr  # noqa: E402

SEED = 20261205
PASSAGES = 8


def labels(batches: list[str], out: str) -> None:
    """Emergent theme labels of each batch folder, re-named by the code on PYTHONPATH."""
    from pipeline import config
    from pipeline.embed.stage import batch_params
    from pipeline.themes import stage

    params = config.load_params()
    found: dict[str, dict[str, str]] = {}
    for b in batches:
        p = batch_params(Path(b), params)
        a, s, av, sv = stage.load_inputs(Path(b))
        t = stage.themes_core(a, s, av, sv, p, None, stage.make_encoder(p)).themes
        t = t[(t["scope"] != "all") & (t["origin"] == "emergent")]
        found[b] = {str(r.theme_id): str(r.label) for r in t.itertuples()}
    Path(out).write_text(json.dumps(found, indent=1))


def packet(old_json: str, new_json: str, packet_md: str, key_csv: str) -> None:
    old, new = json.loads(Path(old_json).read_text()), json.loads(Path(new_json).read_text())
    rng = random.Random(SEED)
    lines = ["# Theme name review\n",
             "For each theme: passages from it and two candidate names, X and Y. For each name say keep (would go",
             "into a report as it is), edit (right theme, needs rewording) or reject (does not say what the passages",
             "say), and which name is better (X, Y or same). CSV: item,x_verdict,y_verdict,better,reason\n"]
    key = []
    for batch in sorted(old):
        held = tnr.theme_passages(Path(batch))
        for tid in sorted(old[batch]):
            before, after = old[batch][tid], new[batch].get(tid)
            if after is None or before == after:
                continue
            m = held[held["theme_id"] == tid].sort_values("score", ascending=False)
            x_is_old = rng.random() < 0.5
            x, y = (before, after) if x_is_old else (after, before)
            item = len(key) + 1
            key.append({"item": item, "batch": Path(batch).name, "theme_id": tid, "x": x, "y": y,
                        "x_is_old": x_is_old, "old": before, "new": after})
            lines.append(f"## Item {item} (question: {tid.rsplit('.emergent', 1)[0]})\n")
            lines += [f"- {t[:400]}" for t in m["passage"].drop_duplicates().head(PASSAGES)]
            lines.append(f"\nX: **{x}**\n\nY: **{y}**\n")
    Path(packet_md).write_text("\n".join(lines))
    pd.DataFrame(key).to_csv(key_csv, index=False)
    print(f"{len(key)} changed labels")


def score(key_csv: str, verdicts_csv: str, out: str) -> None:
    m = pd.read_csv(key_csv).merge(pd.read_csv(verdicts_csv), on="item", how="left")
    if m["better"].isna().any():
        raise SystemExit(f"verdicts missing for items {m.loc[m['better'].isna(), 'item'].tolist()}")
    xo = m["x_is_old"].astype(bool).to_numpy()
    v_old = np.where(xo, m["x_verdict"], m["y_verdict"])
    v_new = np.where(xo, m["y_verdict"], m["x_verdict"])
    winner = np.where(m["better"] == "same", "same", np.where((m["better"] == "X") == xo, "old", "new"))
    wins = {w: int((winner == w).sum()) for w in ("new", "old", "same")}
    res: dict[str, object] = {"n_changed": len(m), "wins": wins, **tnr.paired_rates(v_old, v_new)}
    res["pairs"] = [{"theme_id": t, "old": a, "new": b, "old_verdict": vo, "new_verdict": vn, "better": wi}
                    for t, a, b, vo, vn, wi in zip(m["theme_id"], m["old"], m["new"], v_old, v_new, winner,
                                                   strict=True)]
    Path(out).write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != "pairs"}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    la = sub.add_parser("labels")
    la.add_argument("--json", required=True)
    la.add_argument("batches", nargs="+")
    pa = sub.add_parser("packet")
    for opt in ("--old", "--new", "--packet", "--key"):
        pa.add_argument(opt, required=True)
    sc = sub.add_parser("score")
    for opt in ("--key", "--verdicts", "--json"):
        sc.add_argument(opt, required=True)
    a = ap.parse_args()
    if a.cmd == "labels":
        labels(a.batches, a.json)
    elif a.cmd == "packet":
        packet(a.old, a.new, a.packet, a.key)
    else:
        score(a.key, a.verdicts, a.json)


if __name__ == "__main__":
    main()
