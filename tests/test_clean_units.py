"""Unit tests of the clean stage's pure helpers (no spaCy): normalise, non-answers, duplicates,
language, PII, passage grouping."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from fresh_process import run_fresh
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.clean.duplicates import find_duplicates
from pipeline.clean.language import LanguageDetector
from pipeline.clean.nonanswers import nonanswer_reason
from pipeline.clean.normalise import normalise_text, word_count
from pipeline.clean.pii import name_spans, redact
from pipeline.clean.segments import Sentence, group_sentences, paragraph_blocks, split_long

# --- normalise -------------------------------------------------------------------------------


def test_dehyphenation_of_pdf_line_breaks() -> None:
    assert normalise_text("access to infor-\nmation for all") == "access to information for all"
    # known prefixes and hyphenated words used elsewhere in the text keep their hyphen
    assert normalise_text("e-\ngovernment services") == "e-government services"
    assert normalise_text("self-\nregulation and more self-regulation") == (
        "self-regulation and more self-regulation"
    )


def test_unicode_and_whitespace() -> None:
    out = normalise_text("\ufeffWe  need\u00a0\u200bmore\tﬁnance.\r\n“Quotes” and don’t stay.")
    assert out == "We need more finance.\n“Quotes” and don’t stay."
    assert normalise_text(None) == ""
    assert normalise_text(float("nan")) == "" and normalise_text(pd.NA) == ""
    assert normalise_text(12) == "12"
    assert normalise_text("   \n\n ") == ""
    assert normalise_text("donâ€™t") == "don’t"  # cp1252 mojibake repaired
    assert normalise_text("the world?s operators? Yes?") == "the world’s operators? Yes?"


def test_page_furniture_and_repeated_headers_removed() -> None:
    body = [f"Paragraph {i} says something about connectivity and skills." for i in range(12)]
    lines: list[str] = []
    for page, chunk in enumerate([body[:4], body[4:8], body[8:]], start=1):
        lines += ["ACME Institute response to the consultation", *chunk, f"Page {page} of 3", ""]
    out = normalise_text("\n".join(lines))
    assert "ACME Institute response" not in out
    assert "Page 2 of 3" not in out
    assert all(f"Paragraph {i} says" in out for i in range(12))


def test_wrapped_lines_are_joined_but_bullets_kept() -> None:
    text = "We recommend that governments\ninvest in rural broadband.\n- first item\n- second item"
    assert normalise_text(text) == (
        "We recommend that governments invest in rural broadband.\n- first item\n- second item"
    )


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_normalise_idempotent(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once


# --- non-answers -----------------------------------------------------------------------------

NONANSWERS = [
    ("", "empty"), ("   ", "empty"), ("N/A", "na"), ("n.a.", "na"), ("-", "na"), ("...", "na"),
    ("k.A.", "na"), ("None", "none"), ("Nothing.", "none"), ("#NAME?", "na"),
    ("I don't know", "na"), ("i'm not sure", "na"), ("Keine Ahnung", "na"),
    ("No comment.", "no_comment"), ("Nothing to add", "no_comment"),
    ("We have no further comments at this stage.", "no_comment"), ("sin comentarios", "no_comment"),
    ("Keine Anmerkungen.", "no_comment"), ("Sans commentaire", "no_comment"),
    ("See above", "see_above"), ("See previous answer.", "see_above"),
    ("see our answer to question 3", "see_above"), ("siehe oben", "see_above"),
    ("voir ci-dessus", "see_above"), ("Ver respuesta anterior", "see_above"), ("idem", "see_above"),
    ("Please see our written response.", "see_attachment"), ("See attached submission", "see_attachment"),
    ("Refer to our submission.", "see_attachment"), ("cf. document joint", "see_attachment"),
    ("https://www.example.org/our-paper.pdf", "url_only"), ("See https://example.org", "url_only"),
]


@pytest.mark.parametrize(("text", "reason"), NONANSWERS)
def test_nonanswer_reasons(text: str, reason: str) -> None:
    assert nonanswer_reason(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "No",  # a legitimate answer to a yes/no question
        "Yes",
        "Our response: more funding for broadband in rural areas.",
        "As mentioned before, we need funding for broadband in rural areas.",
        "N/A for governments, but the private sector must invest more in skills.",
        "Information about https://example.org should be translated into local languages.",
        "See the need for more local content in every language.",
        "I don't know my neighbours well, so trust is low.",
    ],
)
def test_real_answers_are_not_flagged(text: str) -> None:
    assert nonanswer_reason(text) == ""


def test_question_copy() -> None:
    q = "What should the priorities of the WSIS process be beyond 2025?"
    assert nonanswer_reason(q, q) == "question_copy"
    assert nonanswer_reason("what should the priorities of the WSIS process be beyond 2025", q) == (
        "question_copy"
    )
    assert nonanswer_reason("The priorities beyond 2025 should be meaningful connectivity.", q) == ""


# --- duplicates ------------------------------------------------------------------------------

CAMPAIGN = ("The Commission must protect an open internet, keep encryption strong and guarantee "
            "that every citizen has affordable access to broadband networks. Public money should "
            "fund open source software, community networks and digital skills programmes in "
            "schools and libraries, and every new rule must be tested against its effect on "
            "small organisations and on people who are not online yet.")


def _dups(rows: list[tuple[str, str, str]], **kw):  # (answer_id, owner, text)
    return find_duplicates(
        [r[0] for r in rows], [r[2] for r in rows], [r[1] for r in rows], [True] * len(rows), **kw
    )


def test_exact_near_and_self_groups() -> None:
    rows = [
        ("a::q1", "a", CAMPAIGN),
        ("b::q1", "b", CAMPAIGN.upper()),  # case/punctuation-only difference = exact
        ("c::q1", "c", CAMPAIGN.replace("strong", "strong,").replace("networks", "networks.")),
        ("d::q1", "d", CAMPAIGN + " Signed, the Riverside Digital Club."),  # a signature = near
        ("e::q1", "e", "Completely different answer about digital skills for older people in towns."),
        ("f::q1", "f", "Local content in local languages matters for inclusion and for culture too."),
        ("f::q2", "f", "Local content in local languages matters for inclusion and for culture too."),
    ]
    res = _dups(rows)
    assert res.group[0] == res.group[1] == res.group[2] == res.group[3] != ""
    assert res.size[:4] == [4, 4, 4, 4]
    assert set(res.kind[:4]) == {"near"}  # one edited member makes the group near
    assert (res.group[4], res.size[4], res.kind[4]) == ("", 1, "")
    assert res.kind[5] == res.kind[6] == "self" and res.group[5] == res.group[6] != ""


def test_exact_campaign_kind_and_min_words() -> None:
    rows = [(f"r{i}::q1", f"r{i}", CAMPAIGN) for i in range(5)] + [
        ("x::q1", "x", "Nein zu KI"), ("y::q1", "y", "Nein zu KI"),  # 3 words: too short
        ("s::q1", "s", "No to AI now"), ("t::q1", "t", "no to AI now!"),  # 4 words: exact slogan
    ]
    res = _dups(rows, min_words=8, min_exact_words=4)
    assert set(res.kind[:5]) == {"exact"} and res.size[0] == 5
    assert res.group[5] == res.group[6] == ""
    assert res.kind[7] == res.kind[8] == "exact"


def test_group_ids_independent_of_row_order() -> None:
    rows = [(f"r{i}::q1", f"r{i}", CAMPAIGN.replace("strong", f"strong {i % 2}")) for i in range(6)]
    base = _dups(rows)
    by_id = {r[0]: (g, s, k) for r, g, s, k in zip(rows, base.group, base.size, base.kind, strict=True)}
    for seed in range(3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        res = _dups(shuffled)
        for r, g, s, k in zip(shuffled, res.group, res.size, res.kind, strict=True):
            assert by_id[r[0]] == (g, s, k)


def test_ineligible_never_grouped() -> None:
    res = find_duplicates(["a", "b"], [CAMPAIGN, CAMPAIGN], ["a", "b"], [True, False])
    assert res.group == ["", ""] and res.size == [1, 1]


def test_duplicates_scale() -> None:
    """2,000 distinct texts plus a 300-member near-duplicate campaign in well under a few seconds."""
    import time

    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choices(vocab, k=25)) for _ in range(2000)]
    texts += [CAMPAIGN + f" Signed {i}." for i in range(300)]
    ids = [f"r{i}::q" for i in range(len(texts))]
    t = time.perf_counter()
    res = find_duplicates(ids, texts, ids, [True] * len(texts))
    assert time.perf_counter() - t < 15
    assert len({g for g in res.group[2000:]}) == 1 and res.size[2000] == 300
    assert all(g == "" for g in res.group[:2000])


# --- language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("We need more investment in digital infrastructure and skills.", "en"),
        ("Wir brauchen mehr Investitionen in die digitale Infrastruktur.", "de"),
        ("Nous devons investir davantage dans les infrastructures numériques.", "fr"),
        ("Necesitamos más inversión en conectividad para las zonas rurales.", "es"),
        ("ok", "und"),
        ("", "und"),
        ("https://example.org", "und"),
    ],
)
def test_language(text: str, lang: str) -> None:
    assert LanguageDetector()(text) == lang


# --- PII -------------------------------------------------------------------------------------


def test_redact_emails_and_phones() -> None:
    text = ("Write to jane.doe@example.org or call +41 22 730 51 11, (022) 730 5111, "
            "202-555-0143 or Tel: 030 1234567. In 2020-2025 we reached 1,000,000 users; ISBN "
            "978-3-16-148410-0; SDG 16.10 on 12.03.2024.")
    out = redact(text)
    assert "jane.doe" not in out and out.count("[email]") == 1
    assert out.count("[phone]") == 4
    for keep in ("2020-2025", "1,000,000", "978-3-16-148410-0", "SDG 16.10", "12.03.2024"):
        assert keep in out


def test_redact_name_spans() -> None:
    text = "I am Ada Lovelace from London."
    assert redact(text, [(5, 17)]) == "I am [name] from London."
    assert redact(text, [(50, 60)]) == text  # spans outside the text are ignored


# --- passages --------------------------------------------------------------------------------


def _sents(lengths: list[int], para_starts: set[int] | None = None) -> tuple[str, list[Sentence]]:
    parts, sents, pos = [], [], 0
    for k, n in enumerate(lengths):
        s = " ".join(["word"] * (n - 1) + ["end."])
        parts.append(s)
        sents.append(Sentence(pos, pos + len(s), n, para_start=k in (para_starts or {0})))
        pos += len(s) + 1
    return " ".join(parts), sents


def test_group_sentences_bounds() -> None:
    _, sents = _sents([10, 10, 10, 50, 3, 20, 2])
    spans = group_sentences(sents, min_words=6, max_words=60)
    words = [sum(s.n_words for s in sents if s.start >= a and s.end <= b) for a, b in spans]
    assert all(w <= 60 for w in words)
    assert sum(words) == 105
    assert words[-1] >= 6  # short tail merged


def test_group_sentences_paragraph_break() -> None:
    _, sents = _sents([10, 10, 10], para_starts={0, 2})
    spans = group_sentences(sents, min_words=6, max_words=60)
    assert len(spans) == 2 and spans[1][0] == sents[2].start


def test_split_long_sentence() -> None:
    text = " ".join(f"w{i}" for i in range(130))
    chunks = split_long(text, 0, len(text), 60)
    assert len(chunks) == 3
    assert all(word_count(text[a:b]) <= 60 for a, b in chunks)
    assert " ".join(text[a:b] for a, b in chunks) == text


def test_paragraph_blocks_offsets() -> None:
    text = "First para.\n\nSecond para line one\nline two.\n\n\n  Third."
    blocks = paragraph_blocks(text)
    assert [text[a:b] for a, b in blocks] == ["First para.", "Second para line one\nline two.", "Third."]
    long = "x " * 30000
    assert all(b - a <= 20000 for a, b in paragraph_blocks(long))


def test_name_spans_from_form_name() -> None:
    text = "Regards, Wg Cdr Ada Lovelace (Retd). Ada thinks Adaptive rules help."
    spans = name_spans(text, "Ada Lovelace")
    assert [text[a:b] for a, b in spans] == ["Ada Lovelace", "Ada"]  # not "Adaptive"
    assert name_spans(text, "Independent Researcher") == []
    assert name_spans(text, "Ada") == []  # one word: too ambiguous
    assert name_spans(text, "acme ltd") == []


def test_language_batch_prior_decides_short_uncertain_texts() -> None:
    detect = LanguageDetector()
    short = "Hospitality and kindness."
    assert detect(short) == "und"  # langid alone is unsure (~0.5)
    english = [f"We need more investment in digital skills and connectivity number {i}." for i in range(30)]
    batch = [*english, short, "ok"]
    out = detect.detect_many(batch)
    assert out[-2] == "en" and out[-1] == "und"  # too-short texts stay undetermined
    assert detect.detect_many(batch[::-1])[::-1] == out  # order independent
    german = ["Wir brauchen mehr Investitionen in digitale Infrastruktur."] * 3
    assert detect.detect_many([*english, *german])[-1] == "de"  # confident minority kept


def test_text_passages_without_spacy_follow_the_clean_rules() -> None:
    """The model-free splitter (for raw text outside the clean stage) keeps segments.parquet's rules."""
    from pipeline.clean.segments import regex_sentences, text_passages

    text = ("Access improved. Costs fell; Rural areas lag!\n\n- community networks\n- local content in "
            "schools\nThe end. " + "word " * 70).strip()
    sents = regex_sentences(text)
    assert [text[s.start:s.end] for s in sents[:4]] == [
        "Access improved.", "Costs fell;", "Rural areas lag!", "- community networks"]
    assert sents[3].para_start and not sents[4].para_start
    spans = text_passages(text, max_words=30, min_words=6)
    words = [len(text[s:e].split()) for s, e in spans]
    assert max(words) <= 30 and sum(words) == len(text.split())  # every word once, none over the bound
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))
    assert text[spans[0][0]:spans[0][1]] == "Access improved. Costs fell; Rural areas lag!"  # paragraph end
    assert text_passages("", 30, 6) == [] and text_passages("One.", 30, 6) == [(0, 4)]


def test_spacy_loads_without_importing_torch_and_torch_still_imports_after() -> None:
    """thinc imports torch (2-3 s) only to offer layers the CNN pipelines never use; `import_spacy` keeps it out
    of the clean stage, and torch (the reference encoder) still imports normally afterwards."""
    script = (
        "import sys\n"
        "from pipeline.clean.nlp import load_nlp\n"
        "from pipeline.params import CleanParams\n"
        "nlp = load_nlp(CleanParams().spacy_model)\n"
        "doc = nlp('The Internet Governance Forum met in Geneva. Ministers spoke.')\n"
        "assert len(list(doc.sents)) == 2 and doc.ents, 'the pipeline works'\n"
        "assert 'torch' not in sys.modules, 'spaCy imported torch'\n"
        "import torch\n"
        "assert torch.ones(2).sum().item() == 2.0\n"
        "print('ok')\n"
    )
    run_fresh(script)


def test_langid_loads_as_the_library_reads_it_and_a_prefetch_loads_it_once() -> None:
    """The clean stage loads langid's model on a thread while spaCy loads (`prefetch_identifier`): the detector
    waits for that load instead of loading a second copy, and the model is the one py3langid itself reads."""
    from py3langid.langid import LanguageIdentifier

    from pipeline.clean import language

    texts = ["Access to broadband in rural areas is still far too expensive for most households.",
             "L'accès au haut débit reste trop cher pour les ménages des zones rurales.",
             "Der Breitbandzugang bleibt für Haushalte auf dem Land viel zu teuer.",
             "El acceso a la banda ancha sigue siendo demasiado caro en las zonas rurales.", "ok"]
    language.clear_identifier_cache()
    thread = language.prefetch_identifier(language.DEFAULT_LANGUAGES)
    found = LanguageDetector().detect_many(texts)
    thread.join()
    assert found == ["en", "fr", "de", "es", "und"]
    assert language._load_identifier.cache_info().misses == 1
    ours = language._identifier(language.DEFAULT_LANGUAGES)
    ref = LanguageIdentifier.from_model_file("data/model.npz.xz", norm_probs=True)
    ref.set_languages(list(language.DEFAULT_LANGUAGES))
    assert ours.nb_classes == ref.nb_classes and ours.tk_output == ref.tk_output
    assert all(ours.rank(t) == ref.rank(t) for t in texts)
