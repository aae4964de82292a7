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
