"""Non-answers: texts that carry no content of their own ("N/A", "see above", a copy of the question).

They are flagged, never dropped: the report counts them, and the analysis stages skip them so that
"no comment" does not become a theme. Patterns are deliberately anchored to the whole (short) text:
"N/A" inside a real answer is not a non-answer.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

__all__ = ["REASONS", "nonanswer_reason"]

REASONS = (
    "empty", "na", "none", "no_comment", "see_above", "see_attachment", "question_copy", "url_only",
)

# The bare-domain branch starts only at the start of a dotted run ((?<![\w.-])); "\b[\w.-]+" could start at
# every dot of a long "a.a.a..." run and re-scan the rest each time (quadratic).
_URL = re.compile(
    r"(?:https?://|www\.)\S++|(?<![\w.-])[\w.-]+\.(?:org|com|int|net|gov|edu|eu)(?:/\S*)?\b", re.I
)
_NON_WORD = re.compile(r"[^\w\s/]+")
_SPACE = re.compile(r"\s+")

_NA = re.compile(
    r"^(?:n\s*/?\s*a|n\s*a|na|n\.?a\.?|not applicable|not relevant|null|no answer|"
    r"no response|no opinion|no idea|not sure|don ?t know|dont know|unknown|idk|pass|tbd|tbc|"
    r"k\s*a|keine angabe|entfällt|nicht zutreffend|sans objet|non applicable|ne sait pas|néant|"
    r"no aplica|non applicabile|não se aplica|nvt|"
    r"x+|0|\?+)$"
)
_NO_COMMENT = re.compile(
    r"^(?:(?:i|we)\s+(?:have|do not have|don ?t have)\s+)?(?:no|without)\s+(?:further\s+|additional\s+|"
    r"specific\s+|other\s+|particular\s+)?(?:comments?|remarks?|input|observations?|views?|answer|"
    r"response|position)(?:\s+(?:at this (?:time|stage|point)|on this (?:question|point|topic)|here))?$"
    r"|^not (?:at this (?:time|stage|point)|at the moment|for now|applicable here)$"
    r"|^(?:nothing|none|no)(?:\s+(?:further|more|else|additional|specific))?\s+to\s+(?:add|say|report|"
    r"declare|comment|mention)(?:\s+(?:here|at this (?:time|stage|point)))?$"
    r"|^(?:(?:i|we)\s+)?(?:have\s+)?nothing\s+(?:further|more|else|additional|specific)$"
    r"|^(?:kein(?:e|en)?\s+(?:kommentar|kommentare|anmerkungen?|bemerkungen?|stellungnahme)|"
    r"sans commentaires?|pas de commentaires?|aucun commentaire|rien à ajouter|"
    r"sin comentarios?|ningún comentario|nada que añadir|nada que agregar|"
    r"nessun commento|niente da aggiungere|sem comentários?|nada a acrescentar|geen opmerkingen)$"
)
_LEAD = (
    r"(?:please\s+)?(?:see(?:\s+also)?|refer\s+to|cf|as|same\s+as|as\s+per|idem|ditto|as\s+stated|"
    r"as\s+mentioned|as\s+answered|as\s+noted|as\s+indicated|as\s+explained|answered|"
    r"siehe(?:\s+auch)?|vgl|wie|voir|cf|ver|véase|vedi|zie|idem\s+que|comme|come)"
)
_TARGET = (
    r"(?:above|before|previous(?:ly)?|preceding|earlier|prior|"
    r"\d+[a-z]?(?:\s*(?:and|or|to|&)\s*\d+[a-z]?)*|"
    r"oben|vorherige\w*|vorige\w*|obige\w*|ci\s?dessus|plus\s+haut|précédente?|"
    r"arriba|anterior(?:mente)?|sopra|precedente|boven|hierboven)"
)
_NOUN = (
    r"(?:answers?|responses?|reply|replies|comments?|remarks?|points?|items?|sections?|antwort\w*|"
    r"réponses?|respuestas?|risposta|risposte|antwoord)"
)
_QNOUN = r"(?:questions?|q|frage\w*|punkt|point|item|pregunta|domanda|vraag|section)"
_SEE_ABOVE = re.compile(
    rf"^{_LEAD}(?:\s+(?:in|under|to|at|zu|à|a|en|in))?(?:\s+(?:my|our|the|meine\w*|unsere\w*|"
    rf"notre|nuestra|la|le|mi|die|der))?"
    rf"(?:\s+{_NOUN})?(?:\s+(?:to|in|for|under|on|of|zu|à|a|de|del|di|op))?(?:\s+the)?"
    rf"(?:\s+{_QNOUN})?\s*{_TARGET}(?:\s+(?:{_NOUN}|{_QNOUN}))?$"
)
_IDEM = re.compile(r"^(?:idem|ditto|same|same as above|as above|dito|ebenso|pareil)$")
_ATTACH = re.compile(
    r"\b(?:attach(?:ed|ment|ments|ement)?|dokument\w*|documento|documents?|datei|unterlagen?|enclosed?|upload(?:ed)?|annex(?:ed)?|appendix|"
    r"(?:written|full|formal|separate|seperate|side|detailed|complementary|supplementary|additional)\s+"
    r"(?:response|submission|contribution|input|answers?|comments?|statement|document|paper|file)|"
    r"(?:response|submission|contribution|paper|document|statement|letter|report|file)\s+"
    r"(?:submitted|provided|sent|uploaded)|our\s+(?:submission|contribution|position paper|paper|response|"
    r"document|letter|statement|report)|position\s+paper|pdf|document\s+(?:submitted|provided|sent)|"
    r"anhang|anlage|beigefügt\w*|stellungnahme|pièce jointe|document joint|ci-joint|ci joint|"
    r"documento adjunto|adjunto|allegato|in allegato|bijlage)\b"
)
_ATTACH_LEAD = re.compile(
    r"^(?:(?:yes|no|ja|nein|oui|non|si|sí)\s+)?(?:please\s+)?(?:kindly\s+)?(?:see|refer|cf|cfr|"
    r"consult|find|read|siehe|bitte|voir|veuillez|ver|véase|vedi|zie|si rinvia)\b"
    r"|\b(?:answered|addressed|covered|set out|detailed|outlined|included|provided|explained|"
    r"described|contained|reflected|elaborated|presented)\s+(?:in|within|under)\b"
)
_DOC_NOUN = re.compile(
    r"\b(?:documents?|files?|papers?|pdf|submissions?|responses?|letters?|annex\w*|statements?|"
    r"comments?|reports?|contributions?|position|dokument\w*|documento|datei|anlage|anhang)\b"
)
_ATTACHED_WORD = re.compile(
    r"\b(?:attached|enclosed|uploaded|ci-joint|ci joint|beigefügt\w*|adjunto|allegato|in allegato)\b"
)
_DONT_KNOW = re.compile(
    r"^(?:honestly\s+|frankly\s+|sorry\s+|well\s+)?(?:i|we)?\s*(?:really\s+|just\s+|genuinely\s+)?"
    r"(?:do not know|don t know|dont know|didn t know|not sure|am not sure|m not sure|are not sure|"
    r"have no idea|ve no idea|no idea|can t say|cannot say|can t tell|cannot tell|not certain|"
    r"am not certain|have no clue|no clue|find it (?:difficult|hard) to (?:answer|say)|"
    r"have no opinion|no opinion|don t have an? (?:answer|opinion)|do not have an? (?:answer|opinion)|"
    r"weiß nicht|weiss nicht|keine ahnung|je ne sais pas|ne sais pas|no sé|no lo sé|non lo so|non so|"
    r"não sei)"
    r"(?:\s+(?:really|yet|at all|honestly|to be honest|for now|what to say|how to answer|"
    r"about (?:this|that|it)|anything about (?:this|that|it)))?$"
)
_NONE = re.compile(
    r"^(?:none|nil|nothing|nothing really|none really|nada|rien|aucun|aucune|nichts|keine|ninguno|"
    r"ninguna|nessuno|nincs|brak|geen)$"
)
_SPREADSHEET_ERROR = re.compile(r"^#(?:name\?|value!|ref!|n/a|div/0!|null!|num!|spill!)$", re.I)
_SEE_NAMED = re.compile(
    r"^(?:please\s+)?(?:see|refer\s+to|cf|siehe|voir|ver|vedi)\s+(?:the\s+|our\s+)?[\w-]+\s+"
    r"(?:response|submission|contribution|position|paper|statement|answers?)$"
)
_URL_FILLER = {
    "see", "please", "refer", "to", "available", "at", "link", "links", "here", "more", "info",
    "source", "sources", "details", "and", "on", "in", "our", "website", "url", "siehe", "voir", "ver",
}


def _fold(text: str) -> str:
    """Lower-case, accents kept, punctuation except '/' removed, spaces collapsed."""
    s = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("'", " ")
    s = _NON_WORD.sub(" ", s)
    return _SPACE.sub(" ", s).strip()


def _is_question_copy(text: str, question: str) -> bool:
    a, q = _fold(text), _fold(question)
    if len(q) < 15 or len(a) < 10:
        return False
    if a == q:
        return True
    if len(a) > 1.3 * len(q) or len(a) < 0.5 * len(q):
        return False
    matcher = SequenceMatcher(None, a, q, autojunk=False)
    # quick_ratio() is an upper bound of ratio() and far cheaper: most answers fail it already
    return matcher.quick_ratio() >= 0.9 and matcher.ratio() >= 0.9


def nonanswer_reason(text: str, question_text: str = "") -> str:
    """Return why `text` is a non-answer ("" when it is a real answer); see `REASONS`."""
    raw = (text or "").strip()
    if not raw:
        return "empty"
    if _SPREADSHEET_ERROR.match(raw):
        return "na"  # an Excel formula error replaced the respondent's text
    folded = _fold(raw)
    if not folded or not any(ch.isalnum() for ch in folded):
        return "na"  # "-", "...", "?": only punctuation
    n_words = len(folded.split())
    if n_words <= 6 and _NA.match(folded):
        return "na"
    if n_words <= 10 and _DONT_KNOW.match(folded):
        return "na"
    if n_words <= 2 and _NONE.match(folded):
        return "none"  # "None"/"Nothing": may be a real (empty) opinion, but carries no theme
    if n_words <= 14 and _NO_COMMENT.match(folded):
        return "no_comment"
    without_urls = _URL.sub(" ", raw)
    if without_urls != raw and set(_fold(without_urls).split()) <= _URL_FILLER:
        return "url_only"
    if n_words <= 4 and _IDEM.match(folded):
        return "see_above"
    if n_words <= 14 and _SEE_ABOVE.match(folded):
        return "see_above"
    if n_words <= 20 and _ATTACH.search(folded) and (
        _ATTACH_LEAD.search(folded) or n_words <= 3
        or (n_words <= 8 and _ATTACHED_WORD.search(folded) and _DOC_NOUN.search(folded))
    ):
        return "see_attachment"
    if n_words <= 6 and _SEE_NAMED.match(folded):
        return "see_attachment"
    if question_text and _is_question_copy(raw, question_text):
        return "question_copy"
    return ""
