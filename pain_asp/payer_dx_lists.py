"""A payer file that gives a parent payer the covered-diagnosis lists of billing articles.

``pain-asp payers import-dx`` (docs/payers.md, "Your MAC's covered-diagnosis lists") reads the
lists from CMS's Medicare Coverage Database download (:mod:`pain_asp.inputs.mcd_articles`) and
writes a payer file that ``extends`` the parent and sets its covered-diagnosis parameter
(the one the knowledge base declares as a mapping of procedures to diagnoses, ``dx_coverage``
in kb/rules/coding/diagnoses.lp): the parent's lists, kept with their sources, plus one list
per imported key, in force from the article's effective date and citing the article (id,
version, URL). A child's parameter replaces the parent's, so the file carries the parent's
lists through every dated entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from .errors import PainAspError
from .inputs.mcd_articles import ArticleList
from .payers import Payer
from .terms import parse_term, show_term

__all__ = ["payer_file_text", "coverage_parameter"]

_START = dt.date(1900, 1, 1)   # the start of an entry written without `since`


def payer_file_text(parent: Payer, payer_id: str, lists: dict[str, ArticleList], download: str,
                    today: dt.date) -> str:
    """The YAML of payer ``payer_id``: ``parent`` with ``lists`` (key: a catalog family or code)
    added to its dx_coverage."""
    name = coverage_parameter(parent)
    entries = parent.parameters.get(name, [])
    starts = sorted({d.since for d in entries} | {a.effective for a in lists.values()} | {_START})
    written: list[dict[str, Any]] = []
    for start in starts:
        value = _parent_lists(parent, name, start)
        for key, article in sorted(lists.items()):
            if article.effective <= start:
                value[key] = _imported(article)
        entry = {"since": start} if start != _START else {}
        entry["value"] = value
        entry["source"] = {"document": f"{parent.id}'s covered-diagnosis lists, with lists imported from "
                                       "CMS's Medicare Coverage Database (each key cites its own)",
                           "confidence": "secondary"}
        if written and written[-1]["value"] == value:
            continue
        written.append(entry)
    names = ", ".join(sorted({f"{a.article} v{a.version}" for a in lists.values()}))
    document = {
        "id": payer_id,
        "name": f"{parent.name}, with the covered-diagnosis lists of {names}",
        "extends": parent.id,
        "description": (f"Written by pain-asp payers import-dx on {today.isoformat()} from the MCD "
                        f"current-articles download ({download}). Review it, and import again when "
                        "CMS revises an article."),
        "parameters": {name: written},
    }
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=False)


class _Dumper(yaml.SafeDumper):
    """Lists of codes on one line each ([M96.1, G89.29]); mappings as blocks."""


_Dumper.add_representer(list, lambda dumper, items: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", items, flow_style=all(isinstance(i, str) for i in items)))


def coverage_parameter(payer: Payer) -> str:
    """The parameter that maps a procedure family or code to the diagnoses that support it."""
    names = [n for n, spec in payer.specs.items() if spec.kind == "mapping" and spec.item == "dx"]
    if len(names) != 1:
        raise PainAspError("the knowledge base declares " + str(len(names)) + " parameters mapping "
                           "procedures to diagnoses; expected one")
    return names[0]


def _parent_lists(parent: Payer, name: str, on: dt.date) -> dict[str, Any]:
    """The parent's lists in force on ``on``, key by key, each with its own source."""
    dated = parent.in_force(name, on)
    if dated is None:
        return {}
    lists: dict[str, list[str]] = {}
    for term in dated.value:
        key, item = parse_term(term)
        lists.setdefault(_plain(key), []).append(_plain(item))
    sources = {row.label: row.source for row in dated.rows if row.source}
    out: dict[str, Any] = {}
    for key, items in lists.items():
        own = sources.get(key) or dated.source
        out[key] = {"value": items, "source": dict(own)}
    return out


def _imported(article: ArticleList) -> dict[str, Any]:
    note = (f"all {article.groups} covered group(s) of the article, merged: a code the article covers "
            "for another of its procedure codes counts for this key too")
    if article.conditional_groups:
        note += ("; group(s) " + ", ".join(map(str, article.conditional_groups)) + " carry an asterisk "
                 "note (a code covered only with another, for instance) that pain-asp does not check")
    return {"value": list(article.codes),
            "source": {"document": f"{article.article} version {article.version}: {article.title}",
                       "url": article.url, "confidence": "source_verified",
                       "effective": article.effective.isoformat(), "note": note}}


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else show_term(value)
