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
from pathlib import Path
from typing import Any

import yaml

from .errors import PainAspError
from .inputs.mcd_articles import ArticleList, article_number, read_article_lists
from .payers import PAYER_ID_RE, UNDATED, Payer, load_registry
from .terms import parse_term, show_term

__all__ = ["import_dx_lists", "payer_file_text", "coverage_parameter"]


def import_dx_lists(download: Path, lists: list[str], payer_id: str, out: Path, extends: str,
                    payer_dirs: list[str], today: dt.date) -> tuple[Path, dict[str, ArticleList]]:
    """Write ``out/<payer_id>.yaml`` from ``lists`` (``KEY=ARTICLE`` items) read in the MCD
    ``download``; returns the file and each key's list. Bad input raises PainAspError and
    writes nothing; an existing file is never overwritten."""
    from .kb import code_catalog, rule_catalog
    from .outputs import check_folder, write_output

    if not PAYER_ID_RE.match(payer_id):
        raise PainAspError("--id: expected a payer id of lower-case letters, digits, _ and -, "
                           "starting with a letter")
    check_folder(out, "--out")
    target = out / f"{payer_id}.yaml"
    if target.exists():
        raise PainAspError(f"--out {out}: {target.name} exists; refusing to overwrite a payer file "
                           "(choose another --id)")
    wanted = _wanted_lists(lists, code_catalog())
    registry = load_registry(payer_dirs, set(rule_catalog()))
    if extends not in registry.ids():
        raise PainAspError(f"--extends {extends}: not a payer id ({', '.join(registry.ids())})")
    if payer_id in registry.ids():
        raise PainAspError(f"--id {payer_id}: a payer of that id exists already (choose another --id)")
    found = read_article_lists(download, sorted(set(wanted.values())), today)
    imported = {key: found[number] for key, number in wanted.items()}
    text = payer_file_text(registry.get(extends), payer_id, imported, download.name, today)
    _check_loads(text, payer_id, payer_dirs)
    write_output(target, text)
    return target, imported


def _wanted_lists(lists: list[str], catalog: dict[str, Any]) -> dict[str, str]:
    """``KEY=ARTICLE`` items as {catalog family or code: article number}."""
    families = {info.family for info in catalog.values()}
    wanted: dict[str, str] = {}
    for i, item in enumerate(lists, start=1):
        key, _, article = item.partition("=")
        key = key.strip() if key.strip() in families else key.strip().upper()
        number = article_number(article)
        if key not in families and key not in catalog:
            raise PainAspError(f"--list {i}: expected KEY=ARTICLE with KEY a family or code of the catalog "
                               "(pain-asp rules list, kb/catalog/codes.lp)")
        if number is None:
            raise PainAspError(f"--list {i}: expected KEY=ARTICLE with ARTICLE a billing article id such as A56876")
        if key in wanted:
            raise PainAspError(f"--list {i}: {key} is given twice")
        wanted[key] = number
    return wanted


def _check_loads(text: str, payer_id: str, payer_dirs: list[str]) -> None:
    """Load a payer file about to be written, beside the payer folders it will be used with."""
    import tempfile

    from .kb import rule_catalog

    with tempfile.TemporaryDirectory(prefix="pain-asp-payer-") as folder:
        (Path(folder) / f"{payer_id}.yaml").write_text(text, encoding="utf-8")
        load_registry([*payer_dirs, folder], set(rule_catalog())).get(payer_id)


def payer_file_text(parent: Payer, payer_id: str, lists: dict[str, ArticleList], download: str,
                    today: dt.date) -> str:
    """The YAML of payer ``payer_id``: ``parent`` with ``lists`` (key: a catalog family or code)
    added to its dx_coverage."""
    name = coverage_parameter(parent)
    entries = parent.parameters.get(name, [])
    starts = sorted({d.since for d in entries} | {a.effective for a in lists.values()} | {UNDATED})
    written: list[dict[str, Any]] = []
    for start in starts:
        value = _parent_lists(parent, name, start)
        for key, article in sorted(lists.items()):
            if article.effective <= start:
                value[key] = _imported(article)
        entry = {"since": start} if start != UNDATED else {}
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
