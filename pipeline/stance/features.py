"""Features of a (target, answer) pair for the stance model.

Why these: the hand-written training set covers ~40 topics, so features must carry over to topics never seen.
Raw embeddings alone learn topics, not positions, so the model sees mostly topic-free signals computed on the
answer sentences closest to the target (a long answer states its position in one or two sentences):
- similarity of those sentences to the target, to a rule-negated target and to four generic stance anchors;
- lexical cue groups (support, opposition, conditions, hedges, failure of the alternative, negation, deferral);
- *pole* features: whether the answer affirms or negates the target's own side of a generic opposition
  (mandatory vs voluntary, allow vs ban, more vs less), so "voluntary will not work" can count as support for
  "X should be mandated" and "voluntary sounds good" as opposition;
- a few dimensions of the product of target and answer vectors (PCA-free: the mean of the product and its
  spread), cheap enough for 10,000 pairs.
Everything here is deterministic and vectorised over pairs; sentence vectors come from `pipeline.embed`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

#: Encoder: list of texts -> (n, d) unit-norm float32 vectors (zero rows for blank texts).
Encoder = Callable[[list[str]], np.ndarray]

_SENT_SPLIT = re.compile(r"(?<=[.!?;])\s+|(?<=[a-z]{3}[.!?])(?=[A-Z][a-z])|\n+"
                         r"|(?<=\S)\s+(?=(?:[a-h]|[ivx]{1,4}|\d{1,2})[.)]\s)")
# a line break inside a sentence (PDF extraction wraps lines): after a lower-case letter, comma or hyphen, or
# before a lower-case word
_WRAP = re.compile(r"(?<=[a-z,;\-–])[ \t]*\n[ \t]*(?=[A-Za-z(\"“'])|[ \t]*\n[ \t]*(?=[a-z])")
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

#: Candidate sentences per answer are capped (by lexical overlap with the target) before embedding, so a
#: 500k-character submission costs about as much as a paragraph.
MAX_CANDIDATES = 40
#: Sentences closest to the target whose cues and vectors describe the answer's position.
TOP_K = 5
MAX_CHARS = 200_000
#: Added to a sentence's similarity to the target, when ranking focus sentences, if it has any stance word.
CUE_BONUS = 0.2

ANCHORS: dict[str, str] = {
    "support": "I support this proposal and agree that it should happen.",
    "oppose": "I oppose this proposal; it should not happen and is unnecessary.",
    "conditional": "It depends: only in some cases, under certain conditions, with exceptions.",
    "neutral": "This is background information and does not take a position; see the attached document.",
}

# cue groups: regexes over the lower-cased sentence (word boundaries added)
CUES: dict[str, tuple[str, ...]] = {
    "support": (r"support(?:s|ed|ive)?", r"agree(?:s|d)?", r"welcome(?:s|d)?", r"endorse[sd]?", r"favou?r(?:s)?",
                r"back(?:s)? (?:the|this|it)", r"essential", r"necessary", r"vital", r"crucial", r"must",
                r"urgent(?:ly)?", r"yes", r"right (?:step|approach|thing)", r"in favou?r", r"strongly",
                r"(?:is|are) needed", r"should (?:be|have|apply|require)", r"overdue", r"benefit(?:s)?",
                r"important", r"definitely", r"absolutely", r"prefer(?:red|able|s)?", r"best (?:way|approach|option)",
                r"(?:sounds|is|are|seems|works?) (?:good|best|better|well)"),
    "oppose": (r"oppose[sd]?", r"opposition", r"against", r"reject(?:s|ed)?", r"disagree(?:s|d)?",
               r"unnecessary", r"not (?:be )?(?:needed|necessary|required|justified|desirable|appropriate)",
               r"no need", r"should not", r"shouldn't", r"must not",
               r"do(?:es)? not (?:support|agree|think|believe|see (?:the )?need)",
               r"don't (?:support|agree|think|believe)", r"not (?:convinced|in favou?r)",
               r"(?:undue|unnecessary|excessive|compliance|regulatory|administrative|extra) burdens?",
               r"burdensome", r"stifle[sd]?", r"hinder(?:s)?", r"red tape", r"counterproductive",
               r"(?:a|be a) mistake", r"(?:be|is) dropped", r"undue", r"onerous", r"excessive", r"no reason",
               r"nothing wrong", r"not (?:be )?(?:allowed|permitted|imposed|introduced)", r"not worth",
               r"harms? (?:progress|innovation|growth|competition|business(?:es)?)", r"hold(?:s)? back",
               r"prevent\w* (?:innovation|progress|anything|growth)"),
    "condition": (r"only (?:if|when|where|for|in|after|once|as|to)", r"provided(?: that)?", r"as long as",
                  r"subject to", r"unless", r"depend(?:s|ing|ent)? (?:on|upon)", r"it depends", r"case[- ]by[- ]case",
                  r"where appropriate", r"except(?:ion|ions)?", r"exempt(?:ion|ions|ed)?", r"threshold",
                  r"high[- ]risk", r"low[- ]risk", r"higher[- ]risk", r"lower[- ]risk", r"tier(?:s|ed)?",
                  r"proportionate", r"proportional", r"combination", r"mixed", r"balance[d]? between",
                  r"phased?(?: in)?", r"initially", r"at first", r"start(?:ing)? with", r"pilot(?:ed|ing)?",
                  r"in principle", r"but not", r"co-regulat\w*", r"hybrid", r"on condition", r"temporar(?:y|ily)",
                  r"under (?:strict )?conditions", r"in some cases", r"first,? then", r"until", r"once",
                  r"rather than (?:full|a blanket|an absolute)", r"(?:smaller|small) (?:firms|businesses|producers)"),
    "hedge": (r"might", r"perhaps", r"possibly", r"could (?:work|be (?:acceptable|considered|allowed))", r"reasonable",
              r"acceptable", r"tolerat\w+", r"sensible", r"fine", r"ok(?:ay)?", r"accept"),
    "failure": (r"fail(?:s|ed|ure)?", r"not work", r"won't work", r"will not work", r"doesn't work",
                r"inadequate", r"insufficient", r"not enough", r"too little", r"ineffective",
                r"cannot be trusted", r"can't be trusted", r"unlikely", r"poor track record", r"has not",
                r"have not", r"not been", r"left .{0,20}(?:unlabelled|too low|behind)", r"unreliable",
                r"inappropriate", r"distorted", r"ignored", r"problematic",
                r"not (?:be )?(?:sufficient|effective|adequate)", r"too slow", r"loopholes?", r"self-interest"),
    "negation": (r"not(?! only)", r"no(?!-)", r"never", r"nor", r"without", r"n't", r"cannot", r"none"),
    "universal": (r"all (?:organi[sz]ations|firms|companies|businesses|sectors|actors|providers|operators|cases|uses|"
                  r"products|employers|schools|users|developers|deployers)", r"every(?:one|body)?", r"universal(?:ly)?",
                  r"across the board", r"without exception", r"no exceptions?", r"regardless", r"in all cases",
                  r"whoever", r"outright", r"blanket", r"full(?:y)?", r"complete(?:ly)?", r"entire(?:ly)?"),
    "defer": (r"see (?:the |our )?(?:attached|attachment|section|submission|earlier|page|comments?)",
              r"attached", r"refer(?: to)?", r"did not have time", r"ran out of time", r"cannot answer",
              r"no comment", r"not sure", r"unsure", r"n/a"),
}
_STANCE_WORD = re.compile(r"\b(?:" + "|".join(CUES["support"] + CUES["oppose"] + CUES["condition"] + CUES["failure"]
                                             + (r"should", r"must", r"need(?:s|ed)? to", r"yes", r"no")) + r")\b")
_COND_INDEX = list(CUES).index("condition")
_CUE_RES = {k: re.compile(r"\b(?:" + "|".join(v) + r")\b") for k, v in CUES.items()}

# generic oppositions: the target's side is found from its words; the other side is its opposite
POLES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    ((r"mandat\w*", r"compulsory", r"obligat\w*", r"required?", r"requirements?", r"require[sd]?", r"legislat\w*",
      r"(?<!self-)regulat\w*", r"law", r"laws", r"legal duty", r"statutory", r"binding", r"licen[cs]\w*",
      r"enforce\w*", r"non-voluntary"),
     (r"(?<!non-)voluntary", r"voluntarily", r"self-regulat\w*", r"optional", r"industry-led", r"self-assess\w*",
      r"guidelines?", r"codes? of conduct", r"industry codes?", r"self-declared")),
    ((r"allow\w*", r"permit\w*", r"approv\w*", r"legal", r"legali[sz]\w*", r"free to", r"introduc\w*",
      r"expand\w*", r"offer\w*", r"keep", r"kept"),
     (r"ban\w*", r"prohibit\w*", r"forbid\w*", r"outlaw\w*", r"block\w*", r"abolish\w*", r"stop\w*",
      r"moratorium", r"scrap\w*", r"remove\w*", r"illegal")),
    ((r"rais\w*", r"increas\w*", r"more", r"higher", r"extend\w*", r"expan\w*"),
     (r"cut", r"cuts", r"reduc\w*", r"lower\w*", r"fewer", r"less", r"decreas\w*", r"freez\w*")),
)
_POLE_RES = [(re.compile(r"\b(?:" + "|".join(a) + r")\b"), re.compile(r"\b(?:" + "|".join(b) + r")\b"))
             for a, b in POLES]
_POS_NEAR = re.compile(r"\b(?:prefer\w*|best|better|good|works? well|favou?r\w*|support\w*|recommend\w*|right)\b")
_NEG_NEAR = re.compile(r"\b(?:not(?! only)|no(?!-)|never|nor|without|cannot|n't|fail\w*|inadequate|insufficient|"
                       r"ineffective|unlikely|inappropriate|unreliable|too little|enough)\b")

_STOP = frozenset("""a an the of to for and or in on at by with be is are was were should must would could may
might will shall can this that these those it its as from into than then there their they them we our us you
your i me my all any each every not no do does did have has had been being which who whom what when where why
how also only such so very more most less new""".split())  # noqa: SIM905 - a word list reads better as text

_MODAL_NEG = re.compile(r"\b(should|must|shall|will|would|can|could|may|is|are|be)\b")


def split_sentences(text: str) -> list[str]:
    """Sentences (and list items) of an answer, blank ones dropped; long texts are cut at MAX_CHARS.

    Questions are dropped when anything else is left: answers quote the consultation's questions ("Should
    X be allowed?"), which resemble the target most and state no position."""
    text = _WRAP.sub(" ", (text or "")[:MAX_CHARS])
    parts = [p.strip(" \t-*•·") for p in _SENT_SPLIT.split(text)]
    parts = [p for p in parts if len(p) > 1 and any(ch.isalpha() for ch in p)]
    statements = [p for p in parts if not p.rstrip("\"'”’ )").endswith("?")]
    return statements or parts


@lru_cache(maxsize=200_000)
def content_words(text: str) -> frozenset[str]:
    """Lower-cased content-word stems (first 6 letters) of a text: the cheap overlap key."""
    return frozenset(w[:6] for w in _TOKEN.findall(text.lower()) if w not in _STOP and len(w) > 2)


def negate_target(target: str) -> str:
    """A rule-negated target ("X should be Y" -> "X should not be Y"): the contrast hypothesis."""
    m = _MODAL_NEG.search(target.lower())
    if not m:
        return "It is not true that " + target[:1].lower() + target[1:]
    end = m.end()
    return target[:end] + " not" + target[end:]


def cue_counts(text: str) -> np.ndarray:
    """log1p counts of each cue group in `text` (order of CUES)."""
    return np.log1p(np.asarray(_raw_cues(text), dtype=np.float32))


@lru_cache(maxsize=200_000)
def _raw_cues(text: str) -> tuple[int, ...]:
    """Counts of each cue group in one text, cached: the same sentences recur across targets."""
    low = text.lower()
    return tuple(len(r.findall(low)) for r in _CUE_RES.values())


def sentence_cues(sentences: Sequence[str]) -> np.ndarray:
    """log1p of the cue counts summed over sentences (each counted on its own)."""
    total = np.zeros(len(CUES), dtype=np.float32)
    for sentence in sentences:
        total += np.asarray(_raw_cues(sentence), dtype=np.float32)
    return np.log1p(total)


@lru_cache(maxsize=4096)
def _pole_side(target: str) -> tuple[int, ...]:
    """Per opposition: +1 when the target uses the first side's words, -1 the second, 0 neither or both."""
    low = target.lower()
    out = []
    for a, b in _POLE_RES:
        ha, hb = bool(a.search(low)), bool(b.search(low))
        out.append(1 if ha and not hb else -1 if hb and not ha else 0)
    return tuple(out)


_CONTRAST = re.compile(r"\b(?:rather than|instead of|as opposed to|in place of)\b")


def _clauses(text: str) -> list[tuple[str, bool]]:
    """(clause, contrasted) pairs: "X rather than Y" gives X and Y, Y marked as set aside (negated)."""
    out = []
    for c in re.split(r"[,:;()]|\b(?:but|however|whereas|while|although)\b", text.lower()):
        if not c.strip():
            continue
        head, *rest = _CONTRAST.split(c)
        out.append((head, False))
        out += [(r, True) for r in rest if r.strip()]
    return out


def pole_features(target: str, sentences: Sequence[str]) -> np.ndarray:
    """(same side affirmed, same side negated, other side affirmed, other side negated, same side praised,
    other side praised, same side scoped, other side scoped), log1p counts over the clauses of `sentences`, summed
    over the oppositions the target takes a side in. "Praised": the clause also says preferable/best/good;
    "scoped": affirmed in a sentence that limits it (only for, high-risk, provided that, ...), as tiered answers do."""
    sides = _pole_side(target)
    counts = np.zeros(8, dtype=np.float32)
    if any(sides):
        for sentence in sentences:
            counts += np.asarray(_sentence_pole(sides, sentence), dtype=np.float32)
    return np.log1p(counts)


@lru_cache(maxsize=200_000)
def _sentence_pole(sides: tuple[int, ...], sentence: str) -> tuple[int, ...]:
    """The eight pole counts of one sentence for a target's sides (cached across targets with the same sides)."""
    counts = [0] * 8
    scoped = bool(_CUE_RES["condition"].search(sentence.lower()))
    for clause, contrasted in _clauses(sentence):
        negated = contrasted or bool(_NEG_NEAR.search(clause))
        praised = not negated and bool(_POS_NEAR.search(clause))
        for side, (a, b) in zip(sides, _POLE_RES, strict=True):
            if side == 0:
                continue
            same, other = (a, b) if side > 0 else (b, a)
            if same.search(clause):
                counts[1 if negated else 0] += 1
                counts[4] += praised
                counts[6] += scoped and not negated
            if other.search(clause):
                counts[3 if negated else 2] += 1
                counts[5] += praised
                counts[7] += scoped and not negated
    return tuple(counts)


@dataclass
class PairParts:
    """What featurising needs of one pair: its focus sentences (closest to the target) and their vectors."""

    focus: list[str]
    focus_vecs: np.ndarray  # (k, d)
    weights: np.ndarray  # (k,)
    sims: np.ndarray  # (k,) cosine of each focus sentence to the target
    n_sentences: int
    lead: list[str]  # the answer's first sentence, where short answers put their position
    every: list[str] = field(default_factory=list)  # all candidate sentences: a tier stated far from the target


def candidates(target: str, sentences: list[str], cap: int = MAX_CANDIDATES) -> list[str]:
    """At most `cap` sentences, those sharing most content words with the target (cue-bearing ones first on
    ties), in their original order."""
    if len(sentences) <= cap:
        return sentences
    key = content_words(target)
    scored = []
    for i, s in enumerate(sentences):
        words = content_words(s)
        cue = float(cue_counts(s)[[0, 1, 2, 4]].sum())
        scored.append((-(len(words & key) + 0.25 * cue), i))
    keep = sorted(i for _, i in sorted(scored)[:cap])
    return [sentences[i] for i in keep]


def feature_names() -> list[str]:
    """Names of the columns of `featurize` (the model card lists them)."""
    names = ["sim_max", "sim_mean", "sim_answer", "neg_gap_max", "neg_gap_mean", "neg_gap_answer",
             "both_sides", "top1_condition", "top1_oppose", "prod_mean", "prod_std", "focus_spread",
             "sim_top_minus_answer", "overlap"]
    for scope in ("focus", "answer"):
        names += [f"anchor_{k}_{scope}" for k in ANCHORS]
    names += [f"anchor_gap_{k}" for k in ANCHORS]
    for scope in ("focus", "answer"):
        names += [f"cue_{k}_{scope}" for k in CUES]
    names += ["pole_same_aff", "pole_same_neg", "pole_other_aff", "pole_other_neg", "pole_same_praised",
              "pole_other_praised", "pole_same_scoped", "pole_other_scoped"]
    names += ["lead_same_aff", "lead_same_neg", "lead_other_aff", "lead_other_neg"]
    names += ["pole_support", "pole_oppose", "cond_x_hedge", "neg_x_support", "failure_x_other", "target_has_pole"]
    names += ["cond_max_sentence", "cond_sentence_share", "pole_same_scoped_any", "pole_same_aff_any"]
    return names


N_DENSE = len(feature_names())


def featurize_pair(
    target: str, t_vec: np.ndarray, neg_vec: np.ndarray, anchors: np.ndarray,
    answer: str, a_vec: np.ndarray, parts: PairParts, answer_cues: np.ndarray | None = None,
) -> np.ndarray:
    """The topic-free feature row of one pair (see `feature_names`); `answer_cues` = `cue_counts` of the
    answer's first 20,000 characters when already known (it does not depend on the target)."""
    f = parts.focus_vecs
    w = parts.weights
    focus_mean = (w[:, None] * f).sum(0) if len(f) else np.zeros_like(t_vec)
    neg_sims = f @ neg_vec if len(f) else np.zeros(1, dtype=np.float32)
    sims = parts.sims if len(parts.sims) else np.zeros(1, dtype=np.float32)
    sim_answer = float(a_vec @ t_vec)
    neg_answer = float(a_vec @ neg_vec)
    prod = focus_mean * t_vec
    spread = float(np.linalg.norm(f - focus_mean, axis=1).mean()) if len(f) > 1 else 0.0
    overlap = len(content_words(" ".join(parts.focus)) & content_words(target)) / max(len(content_words(target)), 1)
    pole_all = pole_features(target, parts.focus)
    top1 = sentence_cues(parts.focus[:1])
    row: list[float] = [float(sims.max()), float(sims.mean()), sim_answer,
                        float((sims - neg_sims).max()), float((sims - neg_sims).mean()), sim_answer - neg_answer,
                        float(min(pole_all[0], pole_all[2])), float(top1[2]), float(top1[1]),
                        float(prod.sum()), float(prod.std() * 10.0), spread,
                        float(sims.max()) - sim_answer, overlap]
    a_focus = (f @ anchors.T).max(axis=0) if len(f) else np.zeros(len(ANCHORS), dtype=np.float32)
    a_answer = anchors @ a_vec
    row += [float(x) for x in a_focus] + [float(x) for x in a_answer]
    row += [float(x) for x in (a_focus - a_focus.mean())]
    c_focus = sentence_cues(parts.focus)
    # whole-answer cues as densities: long answers mention everything somewhere
    whole = cue_counts(answer[:20_000]) if answer_cues is None else answer_cues
    c_answer = np.log1p(np.expm1(whole) / max(parts.n_sentences, 1))
    row += [float(x) for x in c_focus] + [float(x) for x in c_answer]
    pole = pole_all
    row += [float(x) for x in pole]
    names = list(CUES)
    cf = dict(zip(names, c_focus, strict=True))
    has_pole = float(any(_pole_side(target)))
    row += [float(x) for x in pole_features(target, parts.lead)[:4]]
    row += [float(pole[0] + pole[3] + pole[4]), float(pole[1] + pole[2] + pole[5]),
            float(cf["condition"] * cf["hedge"]), float(cf["negation"] * cf["support"]),
            float(cf["failure"] * pole[3]), has_pole]
    row += condition_anywhere(target, parts.every)
    return np.asarray(row, dtype=np.float32)


def condition_anywhere(target: str, sentences: Sequence[str]) -> list[float]:
    """The strongest condition anywhere in the answer, not only near the target: tiered answers argue for the
    measure at length and put the tier in one clause, which the focus sentences and densities miss. (log1p of
    the most condition cues in one sentence, share of sentences with one, and over all sentences the target's
    side affirmed in a scoped sentence and affirmed at all.)"""
    if not sentences:
        return [0.0, 0.0, 0.0, 0.0]
    cond = [_raw_cues(s)[_COND_INDEX] for s in sentences]
    pole = pole_features(target, sentences)
    return [float(np.log1p(max(cond))), float(np.mean([c > 0 for c in cond])), float(pole[6]), float(pole[0])]


@lru_cache(maxsize=200_000)
def _has_stance_word(sentence: str) -> bool:
    return bool(_STANCE_WORD.search(sentence.lower()))


def select_focus(t_vec: np.ndarray, sentences: list[str], vecs: np.ndarray, k: int = TOP_K) -> PairParts:
    """The k sentences closest to the target, with softmax weights (temperature 0.05) over their cosines."""
    if not sentences:
        d = t_vec.shape[0]
        return PairParts([], np.zeros((0, d), dtype=np.float32), np.zeros(0, dtype=np.float32),
                         np.zeros(0, dtype=np.float32), 0, [])
    sims = vecs @ t_vec
    # a position needs words that take one: sentences without any stance cue (titles, background) rank lower
    bonus = np.array([CUE_BONUS * float(_has_stance_word(s)) for s in sentences], dtype=np.float32)
    order = np.argsort(-(sims + bonus), kind="stable")[:k]
    top = sims[order]
    w = np.exp((top - top.max()) / 0.05)
    w = (w / w.sum()).astype(np.float32)
    return PairParts([sentences[i] for i in order], vecs[order], w, top.astype(np.float32), len(sentences),
                     sentences[:1], list(sentences))


def featurize(
    targets: Sequence[str], answers: Sequence[str], encoder: Encoder,
    answer_vectors: np.ndarray | None = None, top_k: int = TOP_K,
) -> np.ndarray:
    """(n_pairs, N_DENSE) feature matrix. All texts (targets, negated targets, anchors, candidate sentences,
    answers unless `answer_vectors` are given) go through `encoder` in one call, so cached vectors make a
    repeated call cheap."""
    n = len(targets)
    if len(answers) != n:
        raise ValueError(f"{n} targets but {len(answers)} answers")
    uniq_targets = list(dict.fromkeys(targets))
    negs = [negate_target(t) for t in uniq_targets]
    sent_lists: dict[tuple[str, str], list[str]] = {}
    splits: dict[str, list[str]] = {}
    for t, a in zip(targets, answers, strict=True):
        if (t, a) not in sent_lists:
            sents = splits.setdefault(a, split_sentences(a))
            sent_lists[(t, a)] = candidates(t, sents)
    all_sents = list(dict.fromkeys(s for v in sent_lists.values() for s in v))
    texts = uniq_targets + negs + list(ANCHORS.values()) + all_sents
    need_answers = answer_vectors is None
    uniq_answers = list(dict.fromkeys(answers)) if need_answers else []
    vecs = encoder(texts + [a[:2000] for a in uniq_answers])
    nt = len(uniq_targets)
    t_of = {t: vecs[i] for i, t in enumerate(uniq_targets)}
    neg_of = {t: vecs[nt + i] for i, t in enumerate(uniq_targets)}
    anchors = vecs[2 * nt: 2 * nt + len(ANCHORS)]
    base = 2 * nt + len(ANCHORS)
    s_of = {s: base + i for i, s in enumerate(all_sents)}
    if need_answers:
        a0 = base + len(all_sents)
        a_index = {a: a0 + i for i, a in enumerate(uniq_answers)}
        a_vecs = np.stack([vecs[a_index[a]] for a in answers]) if n else np.zeros((0, vecs.shape[1]))
    else:
        a_vecs = np.asarray(answer_vectors, dtype=np.float32)
        if a_vecs.shape[0] != n:
            raise ValueError(f"answer_vectors has {a_vecs.shape[0]} rows for {n} answers")
    out = np.zeros((n, N_DENSE), dtype=np.float32)
    cache: dict[tuple[str, str], np.ndarray] = {}
    answer_cues: dict[str, np.ndarray] = {}
    for i, (t, a) in enumerate(zip(targets, answers, strict=True)):
        key = (t, a)
        if key not in cache or answer_vectors is not None:
            sents = sent_lists[key]
            sv = vecs[[s_of[s] for s in sents]] if sents else np.zeros((0, vecs.shape[1]), dtype=np.float32)
            parts = select_focus(t_of[t], sents, sv, top_k)
            if a not in answer_cues:
                answer_cues[a] = cue_counts(a[:20_000])
            cache[key] = featurize_pair(t, t_of[t], neg_of[t], anchors, a, a_vecs[i], parts, answer_cues[a])
        out[i] = cache[key]
    return out
