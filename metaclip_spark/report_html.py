"""The report as one self-contained HTML page: inline style, plots as base64 data URIs, no external reference."""

from __future__ import annotations

import base64
from html import escape

from .pair_keys import dedup_note

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
.side { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #666; font-size: 0.9em; }
"""


def _number(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4g}"
    return escape(str(value))


def _percent(share: float) -> str:
    return f"{100 * share:.2f}%"


def _table(headers: list[str], rows: list[list], text_columns: int = 0) -> str:
    def cell(tag: str, index: int, content: str) -> str:
        css = ' class="text"' if index < text_columns else ""
        return f"<{tag}{css}>{content}</{tag}>"

    head = "".join(cell("th", i, escape(h)) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs(label: str, rows: list[tuple[str, str]]) -> str:
    return _table([label, "value"], [[escape(k), v] for k, v in rows], text_columns=1)


def _image(name: str, data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{encoded}"></figure>'


def _top_table(title: str, entries: list[dict]) -> str:
    rows = [[str(e["rank"]), escape(e["entry"]), _number(e["entry_id"]), _number(e["count"])] for e in entries]
    return f"<div><h3>{escape(title)}</h3>" + _table(["rank", "entry", "id", "count"], rows, text_columns=2) + "</div>"


def render_html(report: dict, images: dict[str, bytes]) -> str:
    """The page for a report summary (as report.compute_report builds it, with its `plots`) and its PNGs."""
    sizes, matching, balancing = report["sizes"], report["matching"], report["balancing"]
    run = report.get("run", {})
    t_rule = (
        f"auto: the smallest t at which entries under t hold {_percent(balancing['tail_share_target'])} of matches"
        if balancing.get("t_mode") == "auto" else "fixed by configuration"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>MetaCLIP curation report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>MetaCLIP curation report</h1>",
        f'<p class="note">Output root {escape(str(report.get("output", "")))}; run {escape(str(run.get("run_id")))} '
        f'over crawls {escape(", ".join(run.get("crawls") or []))}; metadata {escape(str(run.get("metadata")))}; '
        f'metaclip-spark {escape(str(report.get("version")))}.</p>',
        "<h2>Sizes</h2>",
        _pairs("pairs", [
            ("pairs in", _number(sizes["pairs_in"])),
            ("matched (at least one entry)", _number(sizes["pairs_matched"])),
            ("curated (kept by the seeded draws)", _number(sizes["pairs_curated"])),
            ("expected curated size (sum of keep probabilities)", _number(sizes["expected_curated"])),
        ]),
    ]
    if sizes.get("dedup"):
        parts.append(f'<p class="note">{escape(dedup_note(sizes))}</p>')
    files = report.get("files")
    if files and (files["files_done"] or files["files_failed"]):
        parts.append(f'<p class="note">Input files: {_number(files["files_done"])} read '
                     f'({_number(files["files_partial"])} of them in part: damaged bytes, every readable record '
                     f'kept), {_number(files["files_failed"])} failed (retried by the next run).</p>')
        troubled = [("read in part", f) for f in files["partial_files"]] + [("failed", f) for f in files["failed_files"]]
        if troubled:
            parts.append(_table(["file", "state", "why"], [[escape(f["file"]), state, escape(str(f["reason"]))]
                                                          for state, f in troubled[:50]], text_columns=3))
    for group, rows in sizes["by"].items():
        parts.append(f"<h3>By {escape(group)}</h3>")
        parts.append(_table(
            [group, "pairs in", "matched", "curated", "expected curated"],
            [[escape(r["value"]), _number(r["pairs_in"]), _number(r["pairs_matched"]), _number(r["pairs_curated"]),
              _number(r["expected_curated"])] for r in rows],
            text_columns=1,
        ))
    if sizes["groups_skipped"]:
        parts.append(f'<p class="note">No breakdown by {escape(", ".join(sizes["groups_skipped"]))}: '
                     "the pool has no such column.</p>")

    parts += [
        "<h2>Matching</h2>",
        _pairs("matching", [
            ("share of pairs matched", _percent(matching["share_matched"])),
            ("matches (pair, entry) in total", _number(matching["matches_total"])),
            ("mean entries per matched text", f"{matching['mean_entries_per_matched_text']:.3f}"),
            ("entries matched at least once", f"{_number(matching['entries_matched'])} of "
                                              f"{_number(matching['entries_total'])}"),
        ]),
        "<h3>Entries per matched text</h3>",
        _table(["entries", "pairs"], [[_number(d["entries"]), _number(d["pairs"])]
                                      for d in matching["entries_per_matched_text"]]),
        "<h2>Balancing</h2>",
        _pairs("balancing", [
            ("threshold t", _number(balancing["t"])),
            ("how t was chosen", escape(t_rule)),
            ("seed of the keep draws", _number(balancing.get("seed"))),
            ("entries over t (sampled down)", _number(balancing["entries_over_t"])),
            ("tail proportion before (share of matches held by entries under t)",
             _percent(balancing["tail_proportion_before"])),
            ("tail proportion after (same t, counts of the curated set)", _percent(balancing["tail_proportion_after"])),
            ("matches after balancing", _number(balancing["matches_after"])),
            ("entries over t after balancing", _number(balancing["entries_over_t_after"])),
            ("pairs always kept (a tail entry matched, P = 1)", _number(balancing["pairs_always_kept"])),
        ]),
        '<div class="side">',
        _top_table(f"{len(balancing['top_before'])} largest entries before", balancing["top_before"]),
        _top_table(f"{len(balancing['top_after'])} largest entries after", balancing["top_after"]),
        "</div>",
        "<h2>Plots</h2>",
    ]
    for name, data in images.items():
        parts.append(_image(name, data, report.get("plots", {}).get(name, {}).get("title", name)))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
