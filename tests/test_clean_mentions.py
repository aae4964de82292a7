"""Explicit Action Line / SDG mentions: synthetic phrasings, false-positive guards and real corpus text."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.clean.mentions import ACTION_LINE_CODES, SDG_CODES, Mentions, find_mentions

AL_CASES = [
    ("Our work supports C5 directly.", ["C5"]),
    ("This falls under Action Line C7.", ["C7"]),
    ("We contribute to AL C3 through open repositories.", ["C3"]),
    ("Under Action Line C7 e-health we run telemedicine pilots.", ["C7", "C7.e-health"]),
    ("Progress on the e-health action line has been slow.", ["C7", "C7.e-health"]),
    ("The e-agriculture action line should be revisited.", ["C7", "C7.e-agriculture"]),
    ("Funding for C7 (e-learning) remains limited.", ["C7", "C7.e-learning"]),
    ("Action Lines C1 to C3 deserve renewed attention.", ["C1", "C2", "C3"]),
    ("All Action Lines (C1\u2013C11) remain valid.", [f"C{i}" for i in range(1, 12)]),
    ("We focus on Action Lines C1, C3 and C7.", ["C1", "C3", "C7"]),
    ("See C7.e-government and C10.", ["C7", "C7.e-government", "C10"]),
    ("Action Line C7 on e-health and e-agriculture.", ["C7", "C7.e-health", "C7.e-agriculture"]),
    ("C7 e-government, e-business and e-science matter.", ["C7", "C7.e-government",
                                                           "C7.e-business", "C7.e-science"]),
    ("The capacity building action line and the Action Line on media.", ["C4", "C9"]),
    ("e-employment (C7) needs indicators.", ["C7", "C7.e-employment"]),
    ("Under action line c11 we cooperate regionally.", ["C11"]),
    ("Action Line C 5 is about security.", ["C5"]),
    ("C11 and C10 are often forgotten.", ["C10", "C11"]),
]

SDG_CASES = [
    ("This advances SDG 4.", ["4"]),
    ("It helps SDG4 and SDG-17.", ["4", "17"]),
    ("Relevant to SDGs 3 and 5.", ["3", "5"]),
    ("Directly linked to Goal 9.", ["9"]),
    ("Goals 3, 4 and 5 are affected.", ["3", "4", "5"]),
    ("We measure progress on target 9.c.", ["9"]),
    ("SDG target 16.10 on access to information.", ["16"]),
    ("Sustainable Development Goal 13 requires climate data.", ["13"]),
    ("Sustainable Development Goals (SDGs) 6 and 7.", ["6", "7"]),
    ("SDG16.10 and SDG 9 both apply.", ["9", "16"]),
    ("targets 9.c and 17.8 are about connectivity.", ["9", "17"]),
    ("SDGs 1-3 concern poverty, hunger and health.", ["1", "2", "3"]),
    ("Contribuye a los ODS 4 y 5.", ["4", "5"]),
    ("SDG #5 on gender equality.", ["5"]),
    ("Indicator 17.8.1 measures internet use.", ["17"]),
]

NEGATIVE_CASES = [
    "C5ISR platforms are a defence term.",
    "C4-ISR and C2C commerce.",
    "See Table C3 and Annex C5 for details.",
    "Vitamin C 5 times a day.",
    "C3.ai is a company.",
    "The 2030 Agenda frames everything.",  # flag only, no SDG code
    "SDG 2030 is not a goal number; SDG 18 does not exist.",
    "our goal 2 is to learn.",
    "A target 2.5% higher and a target 2.5 million users.",
    "By 2030 we want C19 gone.",
    "e-government alone is a topic, not an explicit Action Line mention.",
    "",
]


@pytest.mark.parametrize(("text", "expected"), AL_CASES)
def test_action_line_phrasings(text: str, expected: list[str]) -> None:
    assert find_mentions(text).action_lines == expected


@pytest.mark.parametrize(("text", "expected"), SDG_CASES)
def test_sdg_phrasings(text: str, expected: list[str]) -> None:
    assert find_mentions(text).sdgs == expected


@pytest.mark.parametrize("text", NEGATIVE_CASES)
def test_no_false_positives(text: str) -> None:
    m = find_mentions(text)
    assert m.action_lines == []
    assert m.sdgs == []


def test_agenda_2030_flag() -> None:
    assert find_mentions("in line with the 2030 Agenda for Sustainable Development").agenda_2030
    assert find_mentions("Agenda 2030 needs digital means").agenda_2030
    assert find_mentions("the SDGs in general").agenda_2030
    assert not find_mentions("by 2030 the agenda of the meeting changes").agenda_2030
    assert find_mentions("").agenda_2030 is False


def test_result_is_frozen_canonical_order() -> None:
    m = find_mentions("C11, C2, C7 e-science, SDG 17, SDG 2 and SDG 10")
    assert m.action_lines == ["C2", "C7", "C7.e-science", "C11"]
    assert m.sdgs == ["2", "10", "17"]
    with pytest.raises(AttributeError):
        m.sdgs = []  # type: ignore[misc]
    assert isinstance(m, Mentions)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_codes_always_valid_and_unique(text: str) -> None:
    m = find_mentions(text)
    assert set(m.action_lines) <= set(ACTION_LINE_CODES)
    assert set(m.sdgs) <= set(SDG_CODES)
    assert len(set(m.action_lines)) == len(m.action_lines)
    assert len(set(m.sdgs)) == len(m.sdgs)


@pytest.mark.shared
def test_real_goal_mentions_au(shared_dir) -> None:
    """AU submissions cite 'Goal 16' / 'Goal 17' of the SDGs in real prose."""
    df = pd.read_csv(shared_dir / "corpora/au-safe-responsible-ai-2023/srai_shortened.csv", dtype=str)
    text_col = next(c for c in df.columns if df[c].astype(str).str.contains("Goal 16").any())
    hits = df[text_col].dropna()
    hits = hits[hits.str.contains(r"Goal 16", regex=True)]
    assert len(hits) >= 1
    for text in hits:
        assert "16" in find_mentions(text).sdgs


@pytest.mark.shared
def test_real_sdg_list_eu_roadmap(shared_dir) -> None:
    """An EU roadmap feedback quotes the SDG list ('Goal 2. End hunger ...', 'Goal 13. Take ...')."""
    raw = (shared_dir / "corpora/eu-ai-white-paper-consultation-2020/roadmap_feedback_2020.csv").read_text(
        encoding="utf-8"
    )
    at = raw.index("Goal 13. Take urgent action")
    window = raw[max(0, at - 3000) : at + 200]
    sdgs = find_mentions(window).sdgs
    assert {"2", "3", "6", "8", "9", "11", "13"} <= set(sdgs)


@pytest.mark.shared
def test_real_wsis_action_lines_netmundial(shared_dir) -> None:
    """NETmundial texts name 'the WSIS Action Lines' generically: no spurious codes from that phrase."""
    texts = [p.read_text(encoding="utf-8") for p in (shared_dir / "corpora/netmundial-2014").glob("*.txt")]
    generic = [t for t in texts if re.search(r"WSIS Action Lines", t)]
    assert generic
    for t in generic:
        for m in re.finditer(r"[^.]*WSIS Action Lines[^.]*\.", t):
            sentence = m.group(0)
            if not re.search(r"\bC\d", sentence):
                assert find_mentions(sentence).action_lines == []


@pytest.mark.shared
def test_real_itu_seed_response(shared_dir) -> None:
    """The real ITU WSIS+20 response names "C2: ..." and "C7: ..." and the 2030 Agenda."""
    text = (shared_dir / "seed/itu-wsis20-response-83.txt").read_text(encoding="utf-8")
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    q8 = next(p for p in paragraphs if "have had the most significant impact due to" in p)
    assert find_mentions(q8).action_lines == ["C2", "C7"]
    q11 = next(p for p in paragraphs if "How can the alignment between the WSIS Action Lines" in p)
    assert find_mentions(q11).agenda_2030 and find_mentions(q11).action_lines == []
    url = next(p for p in paragraphs if p.startswith("<https://www.itu.int"))
    assert find_mentions(url) == Mentions()


@pytest.mark.parametrize(
    "text",
    [
        "http://www.example.si/8355990/Neuradno-Na-%C4%8Delo-sveta-%C5%A1an",  # URL-encoded bytes
        "instruments such as the Sustainable Development Goals5, the ITU Constitution",  # footnote 5
        "write to c5team@example.org",
    ],
)
def test_no_codes_from_urls_or_footnotes(text: str) -> None:
    m = find_mentions(text)
    assert m.action_lines == [] and m.sdgs == []


@pytest.mark.shared
def test_real_trai_goal_9_and_no_url_codes(shared_dir) -> None:
    """A real TRAI submission cites "Goal 9"; URL-encoded Slovenian titles give no C4/C5."""
    df = pd.read_csv(
        shared_dir / "corpora/trai-differential-pricing-2015/trai_differential_pricing_submissions.csv",
        dtype=str, keep_default_na=False,
    )
    text = " ".join(df["text"])
    m = find_mentions(text)
    assert "9" in m.sdgs
    assert m.action_lines == []
