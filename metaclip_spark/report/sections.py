"""The report's sections: one builder per section of the page (report/html.py's SECTIONS, in its order), each giving
its part of the report summary (report/summary.json) from what the scans read (`ReportData`, filled by
report/build.py from report/scans.py) and the run's summary (root/records.py's RunSummary).

No Spark here: every input is already on the driver, bounded by the metadata or by a handful of groups and bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaclip_spark import __version__
from metaclip_spark.balancing import draws, thresholds
from metaclip_spark.root.columns import GROUP_COLUMNS, group_value
from metaclip_spark.ingestion import pair_keys
from metaclip_spark.matching.spark import ListChoice
from metaclip_spark.optout.tables import top_domains
from metaclip_spark.report.scans import ENTRIES, LENGTH_BIN, LENGTH_EDGES, PROB_BIN, PROBABILITY_BINS
from metaclip_spark.root.records import FileTally, RunSummary

TOP_ENTRIES = 30
DEFAULT_TAIL_SHARE = 0.06  # for a summary written before it recorded its tail share

WORLDWIDE_NOTE = ("a worldwide root: an entry is a (language, entry) pair, judged against its own language's t "
                  "(English's is the t shown; every language's is in the Languages section and summary.json's "
                  "t_by_lang), and each pair's keep probability and sampled draws take its own language's p_e; the "
                  "plan table's t is English's, each row giving every other language the t curate derives from it "
                  "(`metaclip-spark plan --lang CODE` gives one language's own table)")


@dataclass(frozen=True)
class ReportData:
    """What the sections are built from: the run's summary and what report/scans.py read of its root."""

    output: str
    run: RunSummary
    files: FileTally  # the input files of the run's crawls, from their unit markers
    groups: list[str]  # the group columns matched/ has (GROUP_COLUMNS)
    text: str | None  # the text column, when matched/ has it
    matched: list[dict]  # scans.matched_pass's results
    curated: list[dict]  # scans.curated_pass's results
    pairs_in_by_group: dict[str, dict[str, int] | None]
    before: np.ndarray  # per-entry counts before balancing (the run's lists end to end, at offsets)
    after: np.ndarray  # and after, counted in curated/
    choice: ListChoice  # which list a row of the run's tables is of (and the column naming it, if they have one)
    offsets: dict[str, int]  # where each list starts in those vectors
    t: int  # the run's t (English's)
    t_by_entry: int | np.ndarray  # the t each entry was balanced at
    names: dict[int, str]  # the entries shown, by position
    located: dict[int, tuple[str, int]]  # their list and id in it, by position
    plan: dict | None  # the plan table (report/plan.py's), with the t it was computed at
    samples: dict | None  # scans.caption_samples's, entries as ids
    hosts: list[dict]

    @property
    def total(self) -> dict:
        return next(r for r in self.matched if r["set"] == "")

    @property
    def pairs_matched(self) -> int:
        return int(self.total["pairs"])

    @property
    def pairs_curated(self) -> int:
        return int(next(r for r in self.curated if r["set"] == "")["pairs"])


def tail_share(run: RunSummary) -> float:
    return float(run.tail_share or DEFAULT_TAIL_SHARE)


# --- the sections, in the page's order --------------------------------------------------------------------------

def overview(d: ReportData) -> dict:
    """Which root and run, and the warnings (worldwide: the run's own, per language, after a note on what t means)."""
    run = d.run
    return {
        "output": d.output,
        "version": __version__,
        "run": {"run_id": run.run_id, "crawls": run.crawls, "metadata": run.metadata,
                "metadata_digest": run.metadata_digest, "seed": run.seed, "finished_at": run.finished_at,
                "version": run.version},
        "warnings": [WORLDWIDE_NOTE, *run.warnings] if run.worldwide else thresholds.balance_warnings(
            d.before, d.t, run.t_mode or "fixed", tail_share(run), d.pairs_matched, d.pairs_curated),
    }


def funnel_section(d: ReportData) -> dict:
    return {"funnel": funnel(d.run, d.pairs_matched, d.pairs_curated)}


def optout(d: ReportData) -> dict:
    return {"optout": optout_section(d.run)}


def sizes(d: ReportData) -> dict:
    """Pairs in, matched, curated and expected, in total and per value of each group column."""
    by = {}
    matched_by = _by_group(d.matched, d.groups, "pairs")
    expected_by = _by_group(d.matched, d.groups, "expected")
    curated_by = _by_group(d.curated, d.groups, "pairs")
    pool_by_group = d.pairs_in_by_group
    for g in d.groups:
        values = sorted(set(matched_by[g]) | set(curated_by[g]) | set(pool_by_group[g] or {}))
        by[g] = [
            {
                "value": v,
                "pairs_in": int(pool_by_group[g].get(v, 0)) if pool_by_group[g] is not None else None,
                "pairs_matched": int(matched_by[g].get(v, 0)),
                "pairs_curated": int(curated_by[g].get(v, 0)),
                "expected_curated": float(expected_by[g].get(v) or 0.0),
            }
            for v in values
        ]
    # The plan's sum at the run's t when there is a plan (in exact fixed point, as the plan table gives it).
    expected_curated = (next(row["expected_pairs"] for row in d.plan["rows"] if row["t"] == d.t) if d.plan
                        else float(d.total["expected"]))
    return {"sizes": {
        "pairs_in": int(d.run.pairs_in),
        "pairs_matched": d.pairs_matched,
        "pairs_curated": d.pairs_curated,
        "expected_curated": expected_curated,
        "group_columns": d.groups,
        "groups_skipped": [g for g in GROUP_COLUMNS if g not in d.groups],
        "by": by,
        **pair_keys.report_sizes(d.run),  # the mode, and the copies of pool pairs each crawl dropped
    }}


def languages(d: ReportData) -> dict:
    """A worldwide run's numbers per language (from its summary: counted at ingest and in the balance stage),
    languages with pairs first, most pairs first; None for a v1 run."""
    run = d.run
    if not run.by_lang:  # a v1 summary records no figures by language
        return {"languages": None}
    by_lang = {code: v.to_json() for code, v in sorted(run.by_lang.items(), key=lambda kv: (-kv[1].pairs, kv[0]))}
    return {"languages": {"t_en": run.t, "t_mode": run.t_mode, "p": run.english_tail_share or 0.0,
                          "by_lang": by_lang, "pairs_without_list": run.pairs_without_list or {},
                          "pairs_unknown_lang": run.pairs_unknown_lang or 0}}


def files(d: ReportData) -> dict:
    return {"files": d.files}


def matching(d: ReportData) -> dict:
    entries_distribution = sorted((int(r["value"]), int(r["pairs"])) for r in d.matched if r["set"] == ENTRIES)
    matches = int(d.before.sum())
    return {"matching": {
        "share_matched": _ratio(d.pairs_matched, int(d.run.pairs_in)),
        "matches_total": matches,
        "mean_entries_per_matched_text": _ratio(matches, d.pairs_matched),
        "entries_per_matched_text": [{"entries": k, "pairs": n} for k, n in entries_distribution],
        "entries_total": int(d.run.entries_total),
        "entries_matched": int((d.before > 0).sum()),
    }}


def balancing(d: ReportData) -> dict:
    """t, the tail before and after (worldwide: each entry against its own language's t), the keep probabilities'
    histogram and the largest entries before and after."""
    run, before, after, t_by_entry = d.run, d.before, d.after, d.t_by_entry
    histogram = [0] * PROBABILITY_BINS
    for r in d.matched:
        if r["set"] == PROB_BIN:
            histogram[int(r["value"])] = int(r["pairs"])
    return {"balancing": {
        "t": d.t,
        "t_mode": run.t_mode,
        "tail_share_target": run.tail_share,
        "seed": run.seed,
        # worldwide: each entry against its own language's t (t above is English's)
        "entries_over_t": int((before > t_by_entry).sum()),
        "tail_proportion_before": draws.tail_proportion(before, t_by_entry),
        "tail_proportion_after": draws.tail_proportion(after, t_by_entry),
        "matches_after": int(after.sum()),
        "entries_matched_after": int((after > 0).sum()),
        "entries_over_t_after": int((after > t_by_entry).sum()),
        "pairs_always_kept": int(d.total["always_kept"] or 0),
        "keep_probability_histogram": {"bins": PROBABILITY_BINS, "pairs": histogram},
        "top_before": _listed(d, before),
        "top_after": _listed(d, after),
    }}


def counts(d: ReportData) -> dict:
    return {"count_decades": {"before": thresholds.count_decades(d.before), "after": thresholds.count_decades(d.after)}}


def plan(d: ReportData) -> dict:
    return {"plan": d.plan}


def samples(d: ReportData) -> dict:
    """The seeded samples, each item with its entries' names."""
    if d.samples is None:
        return {"samples": None}
    named = {kind: [{**item, "entries": [d.names.get(k, "") for k in _keys_of(item, d.offsets, d.choice)]}
                    for item in items]
             if kind in ("curated", "dropped", "unmatched") and items is not None else items
             for kind, items in d.samples.items()}
    return {"samples": named}


def hosts(d: ReportData) -> dict:
    return {"hosts": d.hosts}


def captions(d: ReportData) -> dict:
    return {"caption_lengths": {"bins": length_bin_labels(), "matched": _binned(d.matched),
                                "curated": _binned(d.curated)} if d.text else None}


def stages(d: ReportData) -> dict:
    return {"stages": list(d.run.stages)}


def configuration(d: ReportData) -> dict:
    return {"config": d.run.config}


# The builders by section id, in report/html.py's SECTIONS order (tests/test_report.py checks they match).
SECTIONS = {"overview": overview, "funnel": funnel_section, "optout": optout, "sizes": sizes, "languages": languages,
            "files": files, "matching": matching, "balancing": balancing, "counts": counts, "plan": plan,
            "samples": samples, "hosts": hosts, "captions": captions, "stages": stages,
            "configuration": configuration}


def report_summary(d: ReportData) -> dict:
    """The report summary: every section's part."""
    return {key: value for build in SECTIONS.values() for key, value in build(d).items()}


# --- what the sections share ------------------------------------------------------------------------------------

def entries_shown(before: np.ndarray, after: np.ndarray, samples: dict | None, offsets: dict[str, int],
                  choice: ListChoice) -> list[int]:
    """The positions of the entries the report names: the largest before and after, and those of the samples."""
    sampled = [item for kind in ("curated", "dropped", "unmatched") for item in (samples or {}).get(kind) or []]
    return sorted({i for i, _ in top_entries(before)} | {i for i, _ in top_entries(after)}
                  | {k for item in sampled for k in _keys_of(item, offsets, choice)})


def _keys_of(item: dict, offsets: dict[str, int], choice: ListChoice) -> list[int]:
    """A sample's entries' positions in the per-entry vectors (an unmatched caption has none)."""
    start = offsets[choice.code_of(item)] if item["entry_ids"] else 0
    return [start + i for i in item["entry_ids"]]


def _listed(d: ReportData, counts: np.ndarray) -> list[dict]:
    """The largest entries: each with its id in its list, and its list's code where the run's tables name it."""
    return [{"rank": rank, **{key: d.located[i][0] for key in d.choice.keys}, "entry_id": d.located[i][1],
             "entry": d.names.get(i, ""), "count": c} for rank, (i, c) in enumerate(top_entries(counts), start=1)]


def top_entries(counts: np.ndarray, n: int = TOP_ENTRIES) -> list[tuple[int, int]]:
    """(entry_id, count) of the n largest counts, ties broken by entry id; entries with count 0 left out."""
    nonzero = np.flatnonzero(counts)
    order = np.lexsort((nonzero, -counts[nonzero]))[:n]
    return [(int(nonzero[i]), int(counts[nonzero[i]])) for i in order]


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def length_bin_labels() -> list[str]:
    edges = LENGTH_EDGES
    return [f"{edges[k]}-{edges[k + 1] - 1}" for k in range(len(edges) - 1)] + [f"{edges[-1]}+"]


def funnel(run: RunSummary, pairs_matched: int, pairs_curated: int) -> list[dict]:
    """The steps from what was read to what was kept, each with its count, what was dropped on the way (by reason)
    and how it compares with the step before: a step that only removes has its share of the step before
    (`share_of_previous`); a step that can grow (`<img>` tags of a page, pairs of a tag) has instead so many per item
    of the step before (`per_previous`, named by `per`). `share_of_first` is the share of the first count of pairs
    (the image-text pairs of Common Crawl input, a pool's rows), None for the steps before it (records, pages, tags
    are not pairs). Common Crawl input starts at the records read; a pool of pairs at its rows. Counters come from
    the run's summary (summed at ingest, never recounted here)."""
    extract = run.extract or {}
    pairs_in = int(run.pairs_in or 0)
    # (step, count, dropped by reason, what it counts, "per <item of the step before>" for a step that can grow)
    steps: list[tuple[str, int, dict[str, int], str, str | None]] = []
    if extract:
        pages = int(extract.get("html_pages", 0)) + int(extract.get("wat_pages", 0))
        candidates = int(extract.get("pairs", 0)) + int(extract.get("dropped_language", 0))
        steps += [
            ("records read", int(extract.get("records_read", 0)), {}, "WARC/WAT records of the files read", None),
            ("HTML pages", pages, {k: int(extract.get(k, 0)) for k in (
                "non_html", "dropped_oversized_page", "dropped_decode_error", "dropped_corrupt_member")},
             "responses with an HTML payload (WAT: metadata records with links)", None),
            ("<img> tags", int(extract.get("img_tags", 0)), {}, "on those pages", "per page"),
            ("image-text pairs", candidates, {k: int(extract.get(k, 0)) for k in (
                "dropped_no_src", "dropped_non_http_url", "dropped_no_text")},
             "one per text attribute of an image with an http(s) src (up to three per image)", "per <img> tag"),
            ("in a kept language", int(extract.get("pairs", 0)), {"dropped_language": int(extract.get(
                "dropped_language", 0))}, "language ID (lid.176) against extract.languages", None),
            *optout_steps(run),
            ("after de-duplication", pairs_in, {"dropped_duplicate": int(extract.get("dropped_duplicate", 0))},
             "exact (uuid, text) duplicates dropped", None),
        ]
    else:
        skipped = {}
        for crawl in run.by_crawl.values():
            for reason, n in (crawl.skipped or {}).items():
                skipped[reason] = skipped.get(reason, 0) + int(n)
        if any(skipped.values()):
            steps.append(("rows read", pairs_in + sum(skipped.values()), {}, "rows of the pool files", None))
        steps.append(("pairs", pairs_in, skipped, "rows with a url and a text", None))
    steps += [
        ("matched", int(pairs_matched), {}, "texts matching at least one metadata entry", None),
        ("curated", int(pairs_curated), {}, "kept by the seeded draws of balancing", None),
    ]
    first_pairs = next(i for i, step in enumerate(steps) if step[0] in ("image-text pairs", "rows read", "pairs"))
    rows, previous = [], None
    for index, (name, count, dropped, note, per) in enumerate(steps):
        grows = per is not None and previous is not None
        rows.append({"step": name, "count": count,
                     "share_of_previous": _ratio(count, previous) if previous is not None and not grows else None,
                     "per_previous": _ratio(count, previous) if grows else None, "per": per if grows else None,
                     "share_of_first": _ratio(count, steps[first_pairs][1]) if index >= first_pairs else None,
                     "first": steps[first_pairs][0],
                     "dropped": {k: v for k, v in dropped.items() if v}, "note": note})
        previous = count
    return rows


def optout_steps(run: RunSummary) -> list[tuple[str, int, dict[str, int], str, str | None]]:
    """The funnel's opt-out step: the pairs left once those whose page opts out of AI training are set apart, by kind
    of signal; none when no pair was (the funnel of a run without opt-outs is as it was)."""
    optout = run.optout
    if not optout or not optout["pairs_removed"]:
        return []
    kept = int((run.extract or {}).get("pairs", 0)) - int(optout["pairs_removed"])
    return [("not opted out", kept, {f"optout_{kind}": int(n) for kind, n in optout["by_kind"].items()},
             "pairs whose page or site (robots.txt, blocked domain) refuses AI training ([optout]) set apart, kept "
             "in optout/", None)]


def optout_section(run: RunSummary) -> dict | None:
    """The report's opt-out section: pairs set apart per kind of signal, per signal and per agent, and the registered
    domains with the most (from the run's summary, summed at ingest); None when no crawl kept its pages' signals."""
    optout = run.optout
    if not optout:
        return None
    config = (run.config or {}).get("optout") or {}
    return {"pairs_removed": optout["pairs_removed"], "by_kind": optout["by_kind"], "by_signal": optout["by_signal"],
            "by_agent": optout["by_agent"],
            # the registered domains with the most pairs opted out (a summary.json written before: its hosts')
            "top_domains": top_domains(optout),
            # page hosts with and without a robots.txt capture (curate --robots), summed over the crawls
            "robots": optout.get("robots"),
            "honoured": {key: config.get(key) for key in ("honour_page_signals", "directives", "tdm_reservation",
                                                          "content_usage", "apply_star_group", "blocked_domains")},
            "agents": len(config.get("agents") or ())}


def _binned(results: list[dict], key: str = "pairs") -> list[int]:
    """Pairs per caption-length bin from grouped results (zeros where no pair fell)."""
    counts = [0] * len(LENGTH_EDGES)
    for r in results:
        if r["set"] == LENGTH_BIN:
            counts[int(r["value"])] = int(r[key] or 0)
    return counts


def _by_group(results: list[dict], groups: list[str], key: str) -> dict[str, dict[str, float]]:
    return {g: {group_value(r["value"]): r[key] for r in results if r["set"] == g} for g in groups}
