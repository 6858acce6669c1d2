"""Builds parsers/catalogue_compiled.py, the classifier, from the rule data in parsers/rules/.

    python -m parsers.catalogue_build          # rewrite parsers/catalogue_compiled.py
    python -m parsers.catalogue_build --check  # exit 1 if it is not what the rules give

Why generated code checked into the repository rather than built at import: building it (every
rule's regex compiled and its parse tree walked, the source written and compiled) cost ~150 ms of
CPU in every process that parses a log, before its first line, while importing the generated module
costs a few ms (Python caches its bytecode) and compiles a rule's regex only when a message first
needs it. ``tests/test_parse_catalogue.py`` fails when the file is not what this module makes of
the rules, and holds the generated classifier to the plain loop over the rules defined here.

The rules are dispatched on a message's first word: trying a few hundred regexes per line would
cost tens of microseconds; a dict lookup on the first word narrows it to one to five rules, then
one ``re.match`` decides. Rules whose pattern cannot be keyed on a literal first word (a message
that starts with a node id, say) go to a short generic list tried last.

Group names carry their type: ``name__i`` becomes an ``int`` field ``name``, ``name__f`` a
``float``; any other group is kept as text. A group called ``client`` (a CLIENT LIST string)
also yields ``client_addr`` / ``client_name`` / ``client_user`` so "who asked" is searchable.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

from parsers.catalogue_support import CONSTANT_MAX, FLAGS
from parsers.rules import GENERIC_SPEC as _GENERIC_SPEC
from parsers.rules import SPEC as _SPEC

#: the generated module
TARGET = Path(__file__).resolve().parent / "catalogue_compiled.py"

#: Valkey 8/9 prefixes some replication messages with where they come from; the rest of the
#: message is an ordinary one (``Replica bio thread: PRIMARY <-> REPLICA sync: receiving ...``).
_WRAPPERS = (("Replica bio thread: ", "thread", "bio"), ("Dual channel replication: ", "channel", "dual"))


class Rule(NamedTuple):
    regex: re.Pattern[str]
    category: str
    event: str
    #: the pattern's literal beginning: ``startswith`` rules out most candidates for ~40 ns
    prefix: str
    #: (group index, field name, converter) for each group; empty for a rule without groups
    groups: tuple[tuple[int, str, Any], ...]
    has_client: bool


def _literal_prefix(pattern: str) -> str:
    """The text every match starts with: the pattern up to its first regex construct."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in ".()?!*+[]{}|^$\\-#:'\"=<>/%":
            out.append(pattern[i + 1])
            i += 2
            continue
        if ch in "()[]{}?*+|^$.\\":
            # a quantifier applies to the previous character: it is not certain to be there
            if ch in "?*{" and out:
                out.pop()
            break
        out.append(ch)
        i += 1
    return "".join(out)


def _make_rule(pattern: str, category: str, event: str) -> Rule:
    rx = re.compile(pattern, FLAGS)
    groups: list[tuple[int, str, Any]] = []
    index = {v: k for k, v in rx.groupindex.items()}
    for i in range(rx.groups):
        name = index.get(i + 1)
        if name is None:
            continue
        if name.endswith("__i"):
            groups.append((i, name[:-3], int))
        elif name.endswith("__f"):
            groups.append((i, name[:-3], float))
        else:
            groups.append((i, name, None))
    has_client = "client" in rx.groupindex
    return Rule(rx, category, event, _literal_prefix(pattern), tuple(groups), has_client)


_META = set("()[]{}?*+|^$\\.")


def _first_words(pattern: str) -> list[str] | None:
    """The literal first word of a pattern (``<num>`` for a leading number), or ``None``."""
    head = pattern.split(" ", 1)[0]
    if re.fullmatch(r"\(\?P<\w+>\\d\+\)", head):
        return ["<num>"]
    if not head or any(ch in _META for ch in re.sub(r"\\[.()?!]", "", head)):
        return None
    return [re.sub(r"\\(.)", r"\1", head)]


_ALT_HEAD = re.compile(r"\((?:\?:|\?P<\w+>)([\w|]+)\)")


def _build() -> tuple[dict[str, list[Rule]], list[Rule]]:
    by_word: dict[str, list[Rule]] = {}
    generic: list[Rule] = []
    for spec in _SPEC:
        pattern, category, event = spec[0], spec[1], spec[2]
        rule = _make_rule(pattern, category, event)
        words = spec[3] if len(spec) > 3 else _first_words(pattern)
        if words is None:
            raise ValueError(f"catalogue pattern has no literal first word, give it one: {pattern!r}")
        alt = _ALT_HEAD.match(pattern)
        for w in words:
            r = rule
            if alt is not None and w in alt[1].split("|"):
                r = rule._replace(prefix=w + _literal_prefix(pattern[alt.end() :]))
            elif not rule.prefix.startswith(w):
                r = rule._replace(prefix="")
            by_word.setdefault(w, []).append(r)
    for pattern, category, event in _GENERIC_SPEC:
        generic.append(_make_rule(pattern, category, event))
    return by_word, generic


_BY_WORD, _GENERIC = _build()


@functools.cache
def _parse_tree(pattern: str) -> list[Any]:
    """The top-level items of ``pattern`` as the ``re`` module parses it (its private parser: the
    callers catch any error and then only leave out an optimisation). Cached: a rule is looked at
    several times at import and a pattern can be in several buckets."""
    from re import _parser as sre_parser  # type: ignore[attr-defined]

    return list(sre_parser.parse(pattern, re.S | re.A))


def _required_literal(pattern: str, any_repeat: bool = False) -> str:
    """The longest run of literal characters every match of ``pattern`` must contain, when a
    ``.*`` / ``.+`` (or, with ``any_repeat``, any unbounded repeat) comes before it; else ``""``.

    Why: ``Client (?P<client>.*) (?:scheduled ...|closed) for overcoming of output buffer limits``
    is a candidate for every "Client closed connection <CLIENT LIST>" line and takes ~2.5 µs to
    fail by backtracking over the whole CLIENT LIST; ``" for overcoming of output buffer limits."
    in message`` says the same in ~0.1 µs. Sound by construction: the items of the pattern's
    top-level sequence must all match, in order, so a run of consecutive top-level literals is a
    substring of any match (no IGNORECASE anywhere in the catalogue)."""
    try:
        from re import _constants as sre_constants  # type: ignore[attr-defined]
        items = _parse_tree(pattern)
    except Exception:  # another Python's internals: no guard, same results
        return ""
    literal, repeats = sre_constants.LITERAL, (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT)
    unbounded, dot = sre_constants.MAXREPEAT, [(sre_constants.ANY, None)]

    def scans(item: Any) -> bool:
        op, av = item
        if op in repeats:
            # ``.*`` may backtrack over the whole rest of the message before failing
            return bool(av[1] is unbounded and (any_repeat or list(av[2]) == dot))
        if op is sre_constants.SUBPATTERN:
            return any(scans(x) for x in av[-1])
        if op is sre_constants.BRANCH:
            return any(scans(x) for branch in av[1] for x in branch)
        return False

    best, run, scanned = "", [], False
    for item in [*items, (None, None)]:
        if item[0] is literal:
            run.append(chr(item[1]))
            continue
        if scanned and len(run) > len(best):
            best = "".join(run)
        run = []
        if item[0] is not None and scans(item):
            scanned = True
    return best


def _guard(pattern: str, any_repeat: bool = False) -> str:
    """The substring test to put before a rule's match, or ``""`` for none: :func:`_required_literal`
    when it finds a run worth testing. The test costs ~0.1 µs on a line the rule does match, so only
    rules that can fail slowly get it (and the generic rules, which are tried on every message no
    keyed rule knows)."""
    need = _required_literal(pattern, any_repeat)
    return need if len(need) >= 4 else ""


def _always_set(pattern: str) -> set[int]:
    """Numbers of the groups that take part in every match of ``pattern``: the groups of its
    top-level sequence and the groups nested only in such groups (not in an alternative, an
    optional part, a repeat or a lookaround). Conservative: what it cannot tell is left out (and
    then read with an ``is not None`` test as before)."""
    try:
        from re import _constants as sre_constants  # type: ignore[attr-defined]
        items = _parse_tree(pattern)
    except Exception:  # another Python's internals: every group tested, same results
        return set()
    found: set[int] = set()

    def walk(seq: Any) -> None:
        for op, av in seq:
            if op is sre_constants.SUBPATTERN:
                if av[0]:
                    found.add(av[0])
                walk(av[-1])

    walk(items)
    return found


def _groups_source(rule: Rule) -> str:
    """``rule.groups`` as Python source (converters by name), for the generated call of ``_fields``."""
    items = [f"({i}, {name!r}, {'None' if conv is None else conv.__name__})" for i, name, conv in rule.groups]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _extract_source(rule: Rule, indent: str) -> list[str]:
    """Source lines that build ``out``, the fields of match ``m``: ``catalogue_support.fields_of``
    unrolled for one rule, same dict, same key order.

    When every group of the rule takes part in every match (:func:`_always_set`), ``out`` is one
    dict display (``{'port': int(g[1]), ...}``): no ``None`` tests, one build; a conversion that
    fails (an ``int`` of more than 4,300 digits) sends the match to ``fields_of`` (``_fields`` in the
    generated code), which keeps the text of that group. Otherwise one ``if`` per group. A one-group
    rule reads ``m[i]`` instead of building the tuple of every group."""
    groups = rule.groups
    one = len(groups) == 1
    src = [] if one else [f"{indent}g = m.groups()"]
    every = _always_set(rule.regex.pattern)
    if all(i + 1 in every for i, _n, _c in groups):
        items = []
        for i, name, conv in groups:
            v = f"m[{i + 1}]" if one else f"g[{i}]"
            items.append(f"{name!r}: {v}" if conv is None else f"{name!r}: {conv.__name__}({v})")
        display = "{" + ", ".join(items) + "}"
        if any(conv is not None for _i, _n, conv in groups):
            src += [f"{indent}try:", f"{indent}    out = {display}", f"{indent}except ValueError:"]
            src.append(f"{indent}    out = _fields(m, {_groups_source(rule)}, {rule.has_client})")
            src.append(f"{indent}    return {rule.category!r}, {rule.event!r}, out")
        else:
            src.append(f"{indent}out = {display}")
    else:
        src.append(f"{indent}out = {{}}")
        for i, name, conv in groups:
            src.append(f"{indent}v = m[{i + 1}]" if one else f"{indent}v = g[{i}]")
            src.append(f"{indent}if v is not None:")
            if conv is None:
                src.append(f"{indent}    out[{name!r}] = v")
            else:
                src.append(f"{indent}    try:")
                src.append(f"{indent}        out[{name!r}] = {conv.__name__}(v)")
                src.append(f"{indent}    except ValueError:")
                src.append(f"{indent}        out[{name!r}] = v")
    if rule.has_client:
        src.append(f"{indent}_client_fields(out)")
    return src


#: Valkey 8/9 prefixes some replication messages with where they come from; the rest of the
#: message is an ordinary one (``Replica bio thread: PRIMARY <-> REPLICA sync: receiving ...``).
_WRAPPERS = (("Replica bio thread: ", "thread", "bio"), ("Dual channel replication: ", "channel", "dual"))

def _pure_literal(pattern: str) -> str | None:
    """The text a pattern matches when it is nothing but literal characters, else ``None``: such a
    rule's ``re.match`` is ``message.startswith(text)``."""
    try:
        from re import _constants as sre_constants  # type: ignore[attr-defined]
        items = _parse_tree(pattern)
    except Exception:  # another Python's internals: the regex, same results
        return None
    if items and all(op is sre_constants.LITERAL for op, _av in items):
        return "".join(chr(av) for _op, av in items)
    return None


def _rules_source(fname: str, word: str | None, rules: list[Rule], lazies: list[tuple[str, str]]) -> list[str]:
    """The source of one function ``fname(message) -> (category, event, fields) | None`` doing
    everything :func:`classify` does for a message whose first word is ``word``; ``word`` ``None``
    gives the generic list (the rules without a literal first word, tried when no keyed rule
    matched). The regexes it matches with are appended to ``lazies`` as (name, pattern), under names
    derived from ``fname``: the generated module compiles each on its first use.

    The steps, in this order (the order of the interpreted loop this replaces):

    1. the memo of constant messages, ``_CONSTANT`` (only where the word has a rule without groups:
       nothing else is ever remembered under it);
    2. the wrapper of this word, if any (``Replica bio thread: ``...): the rest is classified and
       the wrapper becomes a field;
    3. the word's rules in catalogue order: a rule's ``prefix`` test, its substring guard, its match,
       its fields (:func:`_extract_source`); a keyed rule without groups remembers the message in
       ``_CONSTANT``;
    4. the generic rules.

    The prefix and guard tests only skip a regex that would fail, so where they are left out the
    results are the same: the prefix test goes where the word implies it and on a bucket's last rule
    (it saves a failing match but costs as much on every line the rule matches, and when that rule
    fails the generic rules run anyway); the guard goes on every rule but a bucket's last (the guard
    of "Fork CoW for ..." would only add its cost to the lines it matches) and stays on the generic
    ones. A rule that is only literal text is a ``startswith``, no regex at all.

    Why generated code: the loop paid, per rule tried, a tuple unpacking, a call through a variable
    and, on a match, a call to build the fields, plus per message a memo lookup, a wrapper test and a
    second dict lookup; here each of those is a constant in straight-line code, and a message costs
    one dict lookup and one call. ``tests/test_parse_catalogue.py`` checks the result against the
    plain loop over the rules (``fields_of``) for every message of the sample logs."""
    src = [f"def {fname}(message):"]
    if word is not None and any(not r.groups for r in rules):
        src.append("    hit = _CONSTANT.get(message)")
        src.append("    if hit is not None:")
        src.append("        return hit[0], hit[1], {}")
    for prefix, key, value in _WRAPPERS:
        if word is not None and prefix.split(" ", 1)[0] == word:
            src.append(f"    if message.startswith({prefix!r}):")
            src.append(f"        res = classify(message[{len(prefix)}:])")
            src.append("        if res is not None:")
            src.append(f"            res[2][{key!r}] = {value!r}")
            src.append("            return res")
    for i, r in enumerate(rules):
        last = i == len(rules) - 1 and word is not None
        literal = None if r.groups else _pure_literal(r.regex.pattern)
        tests = []
        if literal is not None:
            tests.append(f"message.startswith({literal!r})")
        else:
            if r.prefix and not last and not (word is not None and word.startswith(r.prefix)):
                tests.append(f"message.startswith({r.prefix!r})")
            need = "" if last else _guard(r.regex.pattern, word is None)
            if need:
                tests.append(f"{need!r} in message")
        ind = "    "
        if tests:
            src.append(f"{ind}if {' and '.join(tests)}:")
            ind += "    "
        if literal is None:
            rx = f"{fname}_match{i}"
            lazies.append((rx, r.regex.pattern))
            src.append(f"{ind}m = {rx}(message)")
            src.append(f"{ind}if m is not None:")
            ind += "    "
        if r.groups:
            src += _extract_source(r, ind)
            src.append(f"{ind}return {r.category!r}, {r.event!r}, out")
        else:
            if word is not None:
                src.append(f"{ind}if len(_CONSTANT) >= {CONSTANT_MAX}:")
                src.append(f"{ind}    _CONSTANT.clear()")
                src.append(f"{ind}_CONSTANT[message] = {(r.category, r.event)!r}")
            src.append(f"{ind}return {r.category!r}, {r.event!r}, {{}}")
    src.append("    return None" if word is None else "    return _generic(message)")
    return src


_HEADER = '''"""The catalogue's classifier: GENERATED by ``python -m parsers.catalogue_build`` from parsers/rules/.

Do not edit: change the rules and run the command (``tests/test_parse_catalogue.py`` fails until
then). One function per first word of a message (memo of constant messages, wrapper, rules in
catalogue order, then the generic rules), see ``parsers.catalogue_build._rules_source``; each rule's
regex is compiled on its first use (``catalogue_support.lazy_match``).
"""

# ruff: noqa: E501
from parsers.catalogue_support import CONSTANT as _CONSTANT
from parsers.catalogue_support import client_fields as _client_fields
from parsers.catalogue_support import fields_of as _fields
from parsers.catalogue_support import lazy_match as _lazy

_g = globals()
'''

_FOOTER = '''

#: a first word that no rule names but that starts with a digit: the rules of a leading number
_NUM = BUCKETS.get("<num>", _generic)


def classify(message):
    """(category, event, fields) of a Redis/Valkey message, or ``None`` if no rule knows it: the
    function of its first word (memo, wrapper, rules, generic rules), else the rules of a leading
    number or the generic rules."""
    sp = message.find(" ")
    word = message if sp < 0 else message[:sp]
    rules = BUCKETS.get(word)
    if rules is None:
        return _NUM(message) if word[:1].isdigit() else _generic(message)
    return rules(message)
'''


def render() -> str:
    """The source of parsers/catalogue_compiled.py: the lazy regexes, every first word's function
    and the generic one (:func:`_rules_source`), ``BUCKETS`` (first word -> function) and
    ``classify``."""
    lazies: list[tuple[str, str]] = []
    words = list(dict.fromkeys([*_BY_WORD, *(p.split(" ", 1)[0] for p, _k, _v in _WRAPPERS)]))
    functions = ["", ""] + _rules_source("_generic", None, _GENERIC, lazies)
    names = {}
    for k, w in enumerate(words):
        names[w] = f"_word{k}"
        functions += ["", ""] + _rules_source(names[w], w, _BY_WORD.get(w, []), lazies)
    out = [_HEADER.rstrip("\n")]
    out += [f"{name} = _lazy(_g, {name!r}, {pattern!r})" for name, pattern in lazies]
    out += functions
    out += ["", "", "#: first word -> its function", "BUCKETS = {"]
    out += [f"    {w!r}: {n}," for w, n in names.items()]
    out += ["}"]
    return "\n".join(out) + _FOOTER


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write (or --check) parsers/catalogue_compiled.py from the rules.")
    ap.add_argument("--check", action="store_true", help="exit 1 if the file is not what the rules give")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        same = TARGET.exists() and TARGET.read_text(encoding="utf-8") == text
        print(f"{TARGET}: {'up to date' if same else 'OUT OF DATE: run python -m parsers.catalogue_build'}")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
