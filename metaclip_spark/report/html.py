"""The report as one self-contained HTML page: inline style, plots as base64 data URIs, no external reference
(links only to the page's own sections). One <section id=...> per part, listed in SECTIONS."""

from __future__ import annotations

import base64
import json
from html import escape

from metaclip_spark.ingestion.pair_keys import dedup_note

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
.warning { background: #fff4e5; border-left: 4px solid #e69500; padding: 0.5em 1em; margin: 0.6em 0; }
nav { font-size: 0.9em; } nav a { margin-right: 0.8em; }
figcaption { color: #444; font-size: 0.9em; max-width: 750px; }
td.text { max-width: 560px; overflow-wrap: anywhere; }
"""

# The page's sections in order: (id, heading).
SECTIONS = (
    ("overview", "Overview"),
    ("funnel", "From records to curated pairs"),
    ("optout", "AI-training opt-outs"),
    ("sizes", "Sizes"),
    ("languages", "Languages"),
    ("files", "Input files"),
    ("matching", "Matching"),
    ("balancing", "Balancing"),
    ("counts", "Count distribution"),
    ("plan", "Choosing t"),
    ("samples", "Sample captions"),
    ("hosts", "Image hosts"),
    ("captions", "Caption lengths"),
    ("stages", "Stage timings"),
    ("configuration", "Configuration"),
)


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


def _table(headers: list[str], rows: list[list], text_columns: int | set[int] = 0) -> str:
    """A table; the first `text_columns` columns (or those whose index is in the set) are left-aligned text."""
    texts = set(range(text_columns)) if isinstance(text_columns, int) else text_columns

    def cell(tag: str, index: int, content: str) -> str:
        css = ' class="text"' if index in texts else ""
        return f"<{tag}{css}>{content}</{tag}>"

    head = "".join(cell("th", i, escape(h)) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs(label: str, rows: list[tuple[str, str]]) -> str:
    return _table([label, "value"], [[escape(k), v] for k, v in rows], text_columns=1)


def _image(name: str, data: bytes, alt: str, look_for: str = "") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    caption = f"<figcaption>{escape(look_for)}</figcaption>" if look_for else ""
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{encoded}">{caption}</figure>'


def _top_table(title: str, entries: list[dict]) -> str:
    """Top entries; worldwide ones (with metadata_lang) show their language, their id being in its list."""
    if any("metadata_lang" in e for e in entries):
        rows = [[str(e["rank"]), escape(e["entry"]), escape(e["metadata_lang"]), _number(e["entry_id"]),
                 _number(e["count"])] for e in entries]
        table = _table(["rank", "entry", "language", "id", "count"], rows, text_columns=3)
    else:
        rows = [[str(e["rank"]), escape(e["entry"]), _number(e["entry_id"]), _number(e["count"])] for e in entries]
        table = _table(["rank", "entry", "id", "count"], rows, text_columns=2)
    return f"<div><h3>{escape(title)}</h3>" + table + "</div>"


def _share(value) -> str:
    return "" if value is None else _percent(value)


class _Page:
    """The page's parts, section by section, with the plots placed in the sections they belong to."""

    def __init__(self, report: dict, images: dict[str, bytes]):
        self.report, self.images, self.parts = report, images, []

    def _plot(self, name: str) -> str:
        described = self.report.get("plots", {}).get(name, {})
        return _image(name, self.images[name], described.get("title", name), described.get("look_for", ""))

    def section(self, section_id: str, body: list[str], plots: tuple[str, ...] = ()) -> None:
        heading = dict(SECTIONS)[section_id]
        self.parts.append(f'<section id="{section_id}"><h2>{escape(heading)}</h2>')
        self.parts += body
        self.parts += [self._plot(name) for name in plots if name in self.images]
        self.parts.append("</section>")


def _overview(report: dict) -> list[str]:
    run = report.get("run", {})
    body = [f'<p class="note">Output root {escape(str(report.get("output", "")))}; run {escape(str(run.get("run_id")))} '
            f'over crawls {escape(", ".join(run.get("crawls") or []))}; metadata {escape(str(run.get("metadata")))}; '
            f'metaclip-spark {escape(str(report.get("version")))}.</p>']
    for warning in report.get("warnings") or []:
        body.append(f'<p class="warning"><strong>Warning:</strong> {escape(warning)}</p>')
    if not report.get("warnings"):
        body.append('<p class="note">No warning: t balances the pool, and an automatic t reached its tail share.</p>')
    return body


def _funnel(report: dict) -> list[str]:
    rows = []
    steps = report.get("funnel") or []
    for step in steps:
        dropped = ", ".join(f"{reason.removeprefix('dropped_').replace('_', ' ')} {n:,}"
                            for reason, n in step["dropped"].items())
        # a step that can grow says how many per item of the step before: a share over 100% would read as an error
        before = f"{step['per_previous']:,.2f} {escape(step['per'])}" if step.get("per_previous") is not None \
            else _share(step["share_of_previous"])
        of_first = _share(step["share_of_first"]) if step.get("share_of_first") is not None else ""
        rows.append([escape(step["step"]), _number(step["count"]), before, of_first, escape(dropped),
                     escape(step["note"])])
    first = escape(steps[0].get("first", steps[0]["step"])) if steps else "pairs"
    return [
        _table(["step", "count", "of the step before", f"of the {first}", "dropped on the way", "what it counts"],
               rows, text_columns={0, 4, 5}),
        '<p class="note">A page holds any number of &lt;img&gt; tags and an image gives up to three pairs (alt, title, '
        "data-image-title): those steps say how many per item of the step before. Every other step only removes, and "
        f"its share of the {first} follows the pairs from there to the curated set.</p>",
    ]


def _sizes(report: dict) -> list[str]:
    sizes = report["sizes"]
    body = [_pairs("pairs", [
        ("pairs in", _number(sizes["pairs_in"])),
        ("matched (at least one entry)", _number(sizes["pairs_matched"])),
        ("curated (kept by the seeded draws)", _number(sizes["pairs_curated"])),
        ("expected curated size (sum of keep probabilities)", _number(sizes["expected_curated"])),
    ])]
    if sizes.get("dedup"):  # how pairs were de-duplicated, and the copies of pool pairs each crawl dropped
        body.append(f'<p class="note">{escape(dedup_note(sizes))}</p>')
    for group, rows in sizes["by"].items():
        body.append(f"<h3>By {escape(group)}</h3>")
        body.append(_table(
            [group, "pairs in", "matched", "curated", "expected curated"],
            [[escape(r["value"]), _number(r["pairs_in"]), _number(r["pairs_matched"]), _number(r["pairs_curated"]),
              _number(r["expected_curated"])] for r in rows],
            text_columns=1,
        ))
    if sizes["groups_skipped"]:
        body.append(f'<p class="note">No breakdown by {escape(", ".join(sizes["groups_skipped"]))}: '
                    "the pool has no such column.</p>")
    return body


def _languages(report: dict) -> list[str]:
    languages = report.get("languages")
    if not languages:
        return ['<p class="note">A v1 run: one metadata list (English). A worldwide run (<code>--metadata DIR</code>, '
                "one list per language) shows pairs, matches, curated pairs, t and the top entries of every language "
                "here.</p>"]
    rows = [[escape(code), _number(v["entries"]), _number(v["pairs"]), _number(v["pairs_matched"]),
             _number(v["pairs_curated"]), _number(v["t"]), _percent(v["tail_proportion"]),
             _number(v["entries_over_t"]),
             escape(", ".join(f"{entry} ({n:,})" for entry, n in v.get("top_entries") or []))]
            for code, v in languages["by_lang"].items() if v["pairs"]]
    empty = [code for code, v in languages["by_lang"].items() if not v["pairs"]]
    body = [f'<p class="note">t per language: English {escape(str(languages["t_en"]))} ({escape(str(languages["t_mode"]))}'
            f'), every other language\'s derived from English\'s tail share p = {_percent(languages["p"])} (the t at '
            "which the language's cumulative share of matches is nearest p), or set in worldwide.t_by_lang. Look for "
            "languages with many pairs but few matches (a thin list) and for a t of 1 (too few matches to balance)."
            "</p>",
            _table(["language", "entries", "pairs", "matched", "curated", "t", "tail share", "entries over t",
                    "top entries"], rows, text_columns={0, 8})]
    if empty:
        body.append(f'<p class="note">{len(empty):,} more languages of the metadata set have no pairs in this pool: '
                    f'{escape(", ".join(sorted(empty)))}.</p>')
    without = languages.get("pairs_without_list") or {}
    if without or languages.get("pairs_unknown_lang"):
        shown = ", ".join(f"{code} {n:,}" for code, n in sorted(without.items(), key=lambda kv: -kv[1])[:20])
        unknown = languages.get("pairs_unknown_lang")
        body.append(f'<p class="note">Not matched, no list for their language (<code>other</code>: no language, or '
                    f'one with no Wikipedia code, when the set has no other.json): {escape(shown) or "none"}'
                    + (f'; with no language: {_number(unknown)}' if unknown else "") + ".</p>")
    return body


def _files(report: dict) -> list[str]:
    files = report.get("files")
    if not files or not (files["files_done"] or files["files_failed"]):
        return ['<p class="note">No input file recorded: the pool was read as a table.</p>']
    body = [f'<p>Input files: {_number(files["files_done"])} read ({_number(files["files_partial"])} of them in part: '
            f'damaged bytes, every readable record kept), {_number(files["files_failed"])} failed (retried by the '
            "next run).</p>"]
    troubled = [("read in part", f) for f in files["partial_files"]] + [("failed", f) for f in files["failed_files"]]
    if troubled:
        body.append(_table(["file", "state", "why"], [[escape(f["file"]), state, escape(str(f["reason"]))]
                                                     for state, f in troubled[:50]], text_columns=3))
        if len(troubled) > 50:
            body.append(f'<p class="note">{len(troubled) - 50:,} more in `metaclip-spark status`.</p>')
    else:
        body.append('<p class="note">Every file was read whole.</p>')
    return body


def _matching(report: dict) -> list[str]:
    matching = report["matching"]
    return [
        _pairs("matching", [
            ("share of pairs matched", _percent(matching["share_matched"])),
            ("matches (pair, entry) in total", _number(matching["matches_total"])),
            ("mean entries per matched text", f"{matching['mean_entries_per_matched_text']:.3f}"),
            ("entries matched at least once", f"{_number(matching['entries_matched'])} of "
                                              f"{_number(matching['entries_total'])}"),
        ]),
    ]  # pairs by entries per matched text: a plot (entries_per_text.png), the numbers in report/summary.json


def _balancing(report: dict) -> list[str]:
    balancing = report["balancing"]
    t_rule = (
        f"auto: the smallest t at which entries under t hold {_percent(balancing['tail_share_target'])} of matches"
        if balancing.get("t_mode") == "auto" else "fixed by configuration"
    )
    if report.get("languages"):  # worldwide: English's t; every other language's derived (or set) per language
        t_rule += "; for English. Every other language has its own t (Languages), and the numbers below judge " \
                  "each entry against its own language's t"
    return [
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
    ]


def _counts(report: dict) -> list[str]:
    decades = report.get("count_decades") or {}
    after = {row["low"]: row for row in decades.get("after") or []}
    rows = [[f"{r['low']:,}-{r['high']:,}", _number(r["entries"]), _number(r["matches"]), _percent(r["matches_share"]),
             _number(after.get(r["low"], {}).get("entries", 0)),
             _share(after.get(r["low"], {}).get("matches_share", 0.0))] for r in decades.get("before") or []]
    return [_table(["count", "entries", "matches", "share of matches", "entries after", "share after"], rows,
                   text_columns=1)]


def _plan(report: dict) -> list[str]:
    plan = report.get("plan")
    if not plan:
        return ['<p class="note">No plan table: a worldwide root without an English list has no t to plan from.</p>']
    rows = []
    for r in plan.get("rows") or []:
        notes = ", ".join(note for note, on in (("this run", r.get("this_run")), ("auto", r.get("auto")),
                                                ("keeps everything", r.get("keeps_everything"))) if on)
        rows.append([_number(r["t"]), _number(r["entries_over_t"]), _percent(r["tail_share"]),
                     _number(r["matches_after"]), _number(r["expected_pairs"]), _share(r["expected_share"]),
                     escape(notes)])
    return [
        f'<p>What other thresholds would give on this pool (the table of <code>metaclip-spark plan</code>). Auto, with '
        f'a tail share of {_percent(plan.get("tail_share_target") or 0.0)}, picks t = {_number(plan.get("auto_t"))}. '
        "Matches after balancing is the sum of min(c_e, t) (the paper's figure); expected pairs is the sum of the "
        "matched pairs' keep probabilities.</p>",
        *(['<p class="note">Worldwide: t is English\'s; in each row every other language gets the t that '
           "<code>curate</code> derives from English's tail share at that t (or its <code>worldwide.t_by_lang</code>), "
           "and the columns add up the languages, each entry judged against its own language's t "
           "(summary.json lists each row's t per language).</p>"] if plan.get("t_is") else []),
        _table(["t", "entries over t", "tail share", "matches after", "expected pairs", "of matched", ""], rows),
    ]


def _samples(report: dict) -> list[str]:
    samples = report.get("samples")
    if not samples:
        return ['<p class="note">No samples: the pool has no uuid or text column.</p>']
    body = [f'<p class="note">Drawn in a seeded hash order (seed {_number(report.get("run", {}).get("seed"))}): the '
            f'{_number(samples["matched_sampled"])} matched pairs first in that order, split by the run\'s own keep '
            f'draws ({_number(samples["dropped_in_sample"])} of them dropped); the same captions on every rerun.</p>']
    kinds = [("curated", "Curated"), ("dropped", "Dropped by balancing"), ("unmatched", "Unmatched")]
    for kind, title in kinds:
        items = samples.get(kind)
        body.append(f"<h3>{title}</h3>")
        if items is None:
            body.append('<p class="note">Not available: the root keeps the unmatched pairs of Common Crawl input only '
                        "(pairs/), not of a pool of pairs.</p>")
            continue
        if not items:
            body.append('<p class="note">None in the sample.</p>')
            continue
        rows = [[escape(item["text"]), (escape(", ".join(item.get("entries") or [])) or "&ndash;")
                 + (f' <span class="note">({escape(item["metadata_lang"])})</span>' if item.get("metadata_lang") else ""),
                 _number(item.get("keep_prob")) if "keep_prob" in item else "&ndash;", escape(item["crawl"])]
                for item in items]
        body.append(_table(["caption", "entries", "keep probability", "crawl"], rows, text_columns=2))
    return body


def _optout(report: dict) -> list[str]:
    optout = report.get("optout")
    if not optout:
        return ['<p class="note">No opt-out signals: the pool is not Common Crawl pages, or its pages were extracted '
                "before their signals were kept.</p>"]
    honoured = optout["honoured"]
    robots = optout.get("robots")
    parts = [f"<p>{_number(optout['pairs_removed'])} pairs set apart because their page or site refuses AI training "
             f"(kept with the signal in optout/). Honoured: robots directives {escape(', '.join(honoured['directives'] or []))}"
             f" for every crawler or one of {optout['agents']} AI-training agents; TDMRep "
             f"{'yes' if honoured['tdm_reservation'] else 'no'}; Content-Usage refusals of "
             f"{escape(', '.join(honoured['content_usage'] or []))}"
             f"{'' if honoured['honour_page_signals'] else ' (page signals not honoured: honour_page_signals = false)'}"
             ".</p>"]
    if robots:
        parts.append(f"<p>robots.txt (curate --robots, newest capture per host; the `*` group "
                     f"{'obeyed' if honoured.get('apply_star_group', True) else 'not obeyed'} by an agent no group "
                     f"names): {_number(robots['hosts_with_capture'])} page hosts with a robots.txt capture, "
                     f"{_number(robots['hosts_without_capture'])} without (summed over the crawls).</p>")
    for title, key in (("kind of signal", "by_kind"), ("signal", "by_signal"), ("agent (* = every crawler)", "by_agent")):
        rows = sorted(optout[key].items(), key=lambda kv: (-kv[1], kv[0]))
        if rows:
            parts.append(_table([title, "pairs"], [[escape(k), _number(n)] for k, n in rows], text_columns=1))
    if optout["top_domains"]:
        parts.append(_table(["page's registered domain", "pairs opted out"],
                            [[escape(d), _number(n)] for d, n in optout["top_domains"]], text_columns=1))
    return parts


def _hosts(report: dict) -> list[str]:
    hosts = report.get("hosts") or []
    if not hosts:
        return ['<p class="note">No image host: the pool has no URL column, or no curated pair.</p>']
    return [_table(["host", "curated", "matched", "kept"], [
        [escape(h["host"]), _number(h["curated"]), _number(h["matched"]), _share(h["curated"] / h["matched"] if
                                                                                h["matched"] else None)]
        for h in hosts], text_columns=1),
        '<p class="note">Hosts with many more pairs than the rest are worth a look (one site\'s templates '
        "repeated over its pages).</p>"]


def _captions(report: dict) -> list[str]:
    lengths = report.get("caption_lengths")
    if not lengths:
        return ['<p class="note">No caption lengths: the pool has no text column in matched/.</p>']
    rows = [[escape(label), _number(m), _number(c)] for label, m, c in zip(lengths["bins"], lengths["matched"],
                                                                           lengths["curated"])]
    return [_table(["characters", "matched", "curated"], rows, text_columns=1)]


def _stages(report: dict) -> list[str]:
    stages = report.get("stages") or []
    if not stages:
        return ['<p class="note">Not recorded (a run made before stage timings were kept).</p>']
    return [_table(["stage", "runs", "seconds", "rows"], [[escape(s["stage"]), _number(s["runs"]),
                                                          f"{s['seconds']:,.1f}", _number(s.get("rows"))]
                                                         for s in stages], text_columns=1),
            '<p class="note">Time of this process\'s stages: a resumed run shows only what it did itself.</p>']


def _flatten(prefix: str, value) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [item for key, inner in value.items() for item in _flatten(f"{prefix}.{key}" if prefix else key, inner)]
    return [(prefix, json.dumps(value))]


def _configuration(report: dict) -> list[str]:
    config = report.get("config")
    if not config:
        return ['<p class="note">Not recorded (a run made before its configuration was kept).</p>']
    return [_table(["key", "value"], [[escape(k), escape(v)] for k, v in _flatten("", config)], text_columns=2),
            '<p class="note">Spark\'s own settings are listed by name only: they may hold credentials.</p>']


def render_html(report: dict, images: dict[str, bytes]) -> str:
    """The page for a report summary (report/sections.py's sections, with its `plots`) and its PNGs."""
    page = _Page(report, images)
    page.parts += [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>MetaCLIP curation report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>MetaCLIP curation report</h1>",
        "<nav>" + "".join(f'<a href="#{section_id}">{escape(heading)}</a>' for section_id, heading in SECTIONS)
        + "</nav>",
    ]
    page.section("overview", _overview(report))
    page.section("funnel", _funnel(report))
    page.section("optout", _optout(report))
    page.section("sizes", _sizes(report))
    page.section("languages", _languages(report))
    page.section("files", _files(report))
    page.section("matching", _matching(report), ("entries_per_text.png",))
    page.section("balancing", _balancing(report),
                 ("entry_counts.png", "cumulative_share.png", "keep_probabilities.png"))
    page.section("counts", _counts(report), ("count_decades.png",))
    page.section("plan", _plan(report), ("plan.png",))
    page.section("samples", _samples(report))
    page.section("hosts", _hosts(report))
    page.section("captions", _captions(report), ("caption_lengths.png",))
    page.section("stages", _stages(report))
    page.section("configuration", _configuration(report))
    page.parts.append("</body></html>")
    return "\n".join(page.parts) + "\n"
