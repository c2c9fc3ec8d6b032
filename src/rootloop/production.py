"""Is this environment lower, is this name or tag production? Pure judgement, no I/O.

The first line of defence is an allow-list: rootloop acts only in environments
the map's policy declares lower (``policy.act_in``). Everything here compares
*normalised* text, so spelling cannot smuggle production past it: Unicode NFKC
(full-width letters become ASCII), case folded, whitespace trimmed, and runs of
separators (space, ``-``, ``_``, ``.``, ``/``, ``:``) made one ``-``.

The second line recognises production by name and by tag, for resources whose
map says "lower" but which are not. Names are split into words (separators,
camelCase, letters against digits) and a word is production when it is
``prod``/``production``/``prd``/``live``, or is glued to one (``prodcluster``,
``paymentsprod``, ``production1``). English words that merely start with
"prod" (``product``, ``producer``, ``prodigy``) are not, nor is a negated one
(``nonprod``, ``non-prod``: the usual name of a lower AWS account). A name with letters
outside ASCII after NFKC cannot be judged (homoglyphs) and counts as
production: unknown refuses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

#: environments a map that says nothing else may act in (``policy.act_in``)
DEFAULT_LOWER = (
    "lower",
    "lab",
    "local",
    "dev",
    "development",
    "test",
    "testing",
    "qa",
    "ci",
    "sandbox",
    "demo",
    "stage",
    "staging",
)

_PROD_WORDS = frozenset({"prod", "prods", "production", "productions", "prd", "live", "prdn"})
_GLUED = ("production", "prod", "prd")
_NEGATIONS = ("non", "not")
#: ordinary words that start with "prod" and are not environments
_NOT_PROD_PREFIXES = ("product", "produce", "producing", "prodigy", "prodigal", "prodigious")
#: tag keys that name an environment: the value must be a declared lower environment
ENV_TAG_KEYS = frozenset(
    {
        "environment",
        "env",
        "stage",
        "environment-name",
        "env-name",
        "envname",
        "environmentname",
        "deployment-environment",
        "deploy-env",
        "app-env",
        "aws-environment",
    }
)
#: tag keys that often carry an environment among other things: production values refuse
HINT_TAG_KEYS = frozenset({"tier", "name", "stack", "account", "workload", "lifecycle", "usage"})
_ENV_WORDS = frozenset({"environment", "env", "stage", "tier", "lifecycle", "deployment"})
_TRUE = frozenset({"true", "yes", "1", "y", "on"})
_SEPARATORS = re.compile(r"[\s\-_./:]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")


def normalise(text: str) -> str:
    """One spelling per meaning: NFKC, case folded, trimmed, separators made '-'."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    folded = "".join(ch for ch in folded if unicodedata.category(ch) not in ("Cf", "Cc"))
    return _SEPARATORS.sub("-", folded).strip("-")


def words(text: str) -> list[str]:
    """The words of a name: separators, camelCase and letter/digit boundaries split it."""
    nfkc = unicodedata.normalize("NFKC", str(text))
    nfkc = "".join(ch for ch in nfkc if unicodedata.category(ch) not in ("Cf", "Cc"))
    parts = re.split(r"[^0-9A-Za-z]+", _CAMEL.sub(" ", nfkc))
    return [p.casefold() for p in parts if p]


def _word_is_production(word: str) -> bool:
    if word.startswith(_NEGATIONS) and word[3:] in _PROD_WORDS:
        return False  # "nonprod", "notprod": the name says it is not production
    if word in _PROD_WORDS:
        return True
    if word.startswith(_NOT_PROD_PREFIXES) and not word.startswith("production"):
        return word.endswith(_GLUED)  # "productprod" is still glued to "prod"
    return word.startswith(_GLUED) or word.endswith(_GLUED)


def name_production_reason(name: str, extra_pattern: str | None = None) -> str | None:
    """Why ``name`` reads as production, or None. Unjudgeable names are production."""
    nfkc = unicodedata.normalize("NFKC", str(name))
    if any(ord(ch) > 127 and unicodedata.category(ch)[0] in "LN" for ch in nfkc):
        return f"'{name}' has letters outside ASCII, so it cannot be told apart from production"
    split = words(name)
    hits = [
        w
        for i, w in enumerate(split)
        if _word_is_production(w) and not (i and split[i - 1] in _NEGATIONS)
    ]
    if hits:
        return f"'{name}' is named as production (the word '{hits[0]}')"
    if extra_pattern and re.search(extra_pattern, nfkc, re.I):
        return f"'{name}' matches the map's production_name_pattern"
    return None


def is_lower(environment: str, act_in: Iterable[str]) -> bool:
    """On the allow-list after normalisation, and not itself named as production."""
    env = normalise(environment)
    allowed = {normalise(e) for e in act_in}
    return bool(env) and env in allowed and name_production_reason(environment) is None


def _hints_environment(key: str) -> bool:
    """A key that may carry an environment among other things (``deployment_stage``)."""
    k = normalise(key)
    return k in HINT_TAG_KEYS or k.startswith("env") or bool(set(words(key)) & _ENV_WORDS)


def tag_production_reason(
    tags: Mapping[str, str],
    act_in: Iterable[str],
    custom: Mapping[str, str] | None = None,
) -> str | None:
    """Why a resource's own tags say it is not lower, or None.

    Keys are compared normalised, so ``Environment``, ``ENV`` and ``env`` are one key.
    An environment key must name a lower environment; a hint key (``tier``, ``Name``…)
    must not read as production; ``production=true`` and the policy's own
    ``production_tags`` pairs refuse.
    """
    allowed = list(act_in)
    wanted = {normalise(k): normalise(v) for k, v in (custom or {}).items()}
    for key, value in tags.items():
        k, v = normalise(key), normalise(str(value))
        shown = f"{key}={value}"
        if k in wanted and wanted[k] == v:
            return f"tagged {shown} (a production tag of the map's policy)"
        if k in ENV_TAG_KEYS and not is_lower(str(value), allowed):
            return f"tagged {shown}, which is not a lower environment of the map's policy.act_in"
        if _hints_environment(key) and name_production_reason(str(value)):
            return f"tagged {shown}, which reads as production"
        if name_production_reason(key) and v in _TRUE:
            return f"tagged {shown}"
    return None
