"""Edge cases of the tag stage shell that a small or unusual batch hits."""

from __future__ import annotations

import pandas as pd

from pipeline.tagger import stage


def test_no_long_answer_gives_an_empty_segment_frame_with_its_columns() -> None:
    """A batch whose answers all have one segment (e.g. eight short answers) must still tag: the segment
    frame is empty but keeps its columns (an object-typed empty mask used to select zero columns)."""
    segments = pd.DataFrame({"segment_id": ["a#0", "b#0"], "answer_id": ["a", "b"],
                             "text": ["Broadband reached rural schools.", "Skills for teachers."],
                             "is_nonanswer": [False, False]})
    seg = stage._segments_for(["a", "b"], segments, pd.Series([1, 1]), 2)
    assert seg.empty and {"segment_id", "answer_id", "text"} <= set(seg.columns)
    kept = stage._segments_for(["a", "b"], segments, pd.Series([2, 1]), 2)
    assert kept["segment_id"].tolist() == ["a#0"]


# --- the real-answer head (pipeline/tagger/realhead.py) ---------------------------------------------------

def _toy_head_data(n: int = 80, seed: int = 0):
    """Answers whose label shows in their vector, not in the base margins (which are pure noise)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    kinds = ["action_line", "action_line", "sdg"]
    Y = np.zeros((n, 3))
    Y[: n // 2, 0] = 1
    Y[n // 4 : 3 * n // 4, 1] = 1
    Y[: n // 2, 2] = 1
    directions = rng.normal(size=(3, 16))
    V = rng.normal(scale=0.3, size=(n, 16)) + Y @ directions
    M = rng.normal(size=(n, 3))
    order = rng.permutation(n)
    return M[order], V[order], Y[order], kinds


def test_real_answer_head_learns_from_labelled_answers_what_the_margins_miss() -> None:
    import numpy as np

    from pipeline.tagger.realhead import RealAnswerHead

    M, V, Y, kinds = _toy_head_data()
    head = RealAnswerHead().fit(M[:60], V[:60], Y[:60], kinds)
    p = head.predict_proba(M[60:], V[60:])
    assert p.shape == (20, 3)
    assert ((p >= 0.5) == Y[60:].astype(bool)).mean() >= 0.9  # held-out answers
    # soft labels (two analysts disagreeing) are accepted and land between the hard ones
    soft = head.fit(M[:60], V[:60], np.where(Y[:60] > 0, 0.5, 0.0), kinds).predict_proba(M[60:], V[60:])
    assert np.all((soft >= 0) & (soft <= 1))


def test_real_answer_head_stores_no_single_answer_vector(tmp_path) -> None:
    import numpy as np

    from pipeline.tagger.realhead import RealAnswerHead, load_head, save_head

    M, V, Y, kinds = _toy_head_data()
    Y[:, 1] = 0
    Y[0, 1] = 1  # a label only one answer has: no centroid (it would be that answer's vector)
    head = RealAnswerHead(min_positives=2.0).fit(M, V, Y, kinds)
    assert not head.has_centroid_[1] and np.all(head.pos_centroid_[1] == 0)
    again = load_head(save_head(head, tmp_path / "real_head.npz"), 3)
    assert np.allclose(again.predict_proba(M, V), head.predict_proba(M, V))
    import pytest

    with pytest.raises(ValueError):
        load_head(tmp_path / "real_head.npz", 4)


def test_a_changed_head_file_is_refused(tmp_path) -> None:
    import json

    import pytest

    from pipeline.errors import ModelFileError
    from pipeline.tagger import train
    from pipeline.tagger.realhead import RealAnswerHead, save_head

    M, V, Y, kinds = _toy_head_data()

    class Stub:
        label_ids = ["C2", "C5", "SDG9"]

    save_head(RealAnswerHead().fit(M, V, Y, kinds), tmp_path / "real_head.npz")
    (tmp_path / "metrics.json").write_text(json.dumps({"model_files_sha256": train.model_file_hashes(tmp_path)}))
    assert train.load_real_head(tmp_path, Stub()) is not None  # type: ignore[arg-type]
    assert train.load_real_head(tmp_path, Stub(), {"real_head": False}) is None  # type: ignore[arg-type]
    with open(tmp_path / "real_head.npz", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelFileError):
        train.load_real_head(tmp_path, Stub())  # type: ignore[arg-type]


def test_head_decides_answers_and_documents_keep_passage_support() -> None:
    import numpy as np

    from pipeline.tagger.realhead import RealAnswerHead

    M, V, Y, kinds = _toy_head_data()

    class Stub:
        label_ids = ["C2", "C5", "SDG9"]
        label_kinds = kinds
        thresholds_ = np.array([0.5, 0.5, 0.5])

    head = RealAnswerHead().fit(M, V, Y, kinds)
    stage.fit_head_thresholds(head, Y, Stub.label_ids, np.full(len(Y), 30), stage.DecisionRules())
    rules = stage.DecisionRules(sdgs_from_action_lines=False, head_max_passages=16)
    whole = np.full((2, 3), 0.02)  # the base model sees nothing
    vec = np.vstack([V[0], V[-1]])
    _, pred = stage.decide_calibrated(Stub(), whole, np.zeros((0, 3)), np.zeros(0, dtype=np.int64),
                                      np.array([30, 30]), rules, None, head, vec)
    assert pred[0].tolist() == Y[0].astype(int).tolist() and pred[1].tolist() == Y[-1].astype(int).tolist()
    _, base = stage.decide_calibrated(Stub(), whole, np.zeros((0, 3)), np.zeros(0, dtype=np.int64),
                                      np.array([30, 30]), rules)
    assert base.sum() == 0
    # a document (more passages than head_max_passages) is decided by passage support, not by the head
    n_pass = 20
    seg = np.full((n_pass, 3), 0.02)
    _, doc = stage.decide_calibrated(Stub(), whole[:1], seg, np.zeros(n_pass, dtype=np.int64), np.array([400]),
                                     rules, np.full(n_pass, 20), head, vec[:1])
    assert doc.sum() == 0
