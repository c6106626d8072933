"""Case worldwide: MetaCLIP 2 matching per script class, against the bare pyahocorasick loop, in a fresh process.

Inputs, built offline and reproducibly (fixed seed) from wordfreq's word lists (shipped in its wheel):
- one metadata list per language: its `ENTRIES` most frequent words (wordfreq.top_n_list, "best" list; fewer when
  the language's list is shorter). The zh and ja lists hold thousands of single characters (的, 是, の, に...),
  which is what makes CJK texts match 30-50 entries each;
- texts per language, drawn from the same language's top `VOCABULARY` words with Zipf weights (as bench/data.py
  does for English): words joined by spaces for the scripts that write them (Latin, Cyrillic, Arabic, Devanagari,
  Hangul), about 54 characters; joined without spaces for Chinese and Japanese, about 24 characters (a caption of
  the same length in words). Thai is in MetaCLIP 2's no-space class too, but wordfreq has no Thai list: the CJK
  rows stand for it (same edge rule, no spaces between words).

Measured, in one child process so that its memory is that of a worker:
- build time (CPU seconds) and automaton size per language, and the RSS a worker gains with all 10 automata loaded
  (matching.LanguageMatchers, built lazily as a Spark worker builds them, no LRU eviction);
- texts per CPU-second per language: the library (LanguageMatchers.match_many, what matching/spark.py match_pool's worldwide
  batches call) and the bare loop (the same automaton, `sorted({id for _, id in automaton.iter(prepared_text(t))})`
  per text) on the same texts, best of `ROUNDS` interleaved runs each; the ids are checked equal.
- every language's texts through the library in 10k-row batches, in random order (a multilingual partition) and
  grouped by language: what a worker pays for switching automata row by row.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import harness

# Script class of each language: "spaced" texts separate words with spaces; "no_space" texts (CJK) do not.
LANGUAGES = {"en": "Latin", "de": "Latin", "fr": "Latin", "es": "Latin", "ru": "Cyrillic", "ar": "Arabic",
             "hi": "Devanagari", "ko": "Hangul", "zh": "CJK", "ja": "CJK"}
NO_SPACE = {"zh", "ja"}
ENTRIES = 200_000  # per language, at most (ko and hi have ~27-30k words in wordfreq)
VOCABULARY = 30_000  # words texts are drawn from (each language's most frequent)
TEXTS = 50_000  # per language
TEXT_CHARS = {"spaced": (30, 80), "no_space": (12, 36)}  # uniform target lengths: means ~54 and ~24 characters
ROUNDS = 5
SEED = 20251113


def language_entries(code: str, size: int) -> list[str]:
    import wordfreq

    return wordfreq.top_n_list(code, size, wordlist="best")


def language_texts(code: str, words: list[str], count: int, seed: int) -> list[str]:
    """`count` texts of `code`'s words (Zipf-weighted), spaced or not as the language writes."""
    import numpy as np

    from data import zipf_weights

    rng = np.random.Generator(np.random.PCG64([seed, sum(map(ord, code))]))
    vocabulary = np.array(words[:VOCABULARY], dtype=object)
    weights = zipf_weights(len(vocabulary))
    no_space = code in NO_SPACE
    low, high = TEXT_CHARS["no_space" if no_space else "spaced"]
    separator = "" if no_space else " "
    targets = rng.integers(low, high + 1, size=count)
    picks = rng.choice(len(vocabulary), size=(count, 40), p=weights)
    texts = []
    for target, row in zip(targets, picks):
        text = ""
        for word in vocabulary[row]:
            candidate = f"{text}{separator}{word}" if text else word
            if len(candidate) > target and text:
                break
            text = candidate
        texts.append(text)
    return texts


def bare_loop(automaton, texts: list[str]) -> list[list[int]]:
    """The bare pyahocorasick loop of MetaCLIP 2's rule: stripped, spaced text, every match's id, as a sorted set."""
    from metaclip_spark.matching.substrings import prepared_text

    return [sorted({entry_id for _, entry_id in automaton.iter(prepared_text(text, True))}) if text else []
            for text in texts]


def _cpu(body):
    """CPU seconds of `body()` with Python's cyclic GC held off: its full passes over every list alive (the ids
    of earlier runs, the entry lists) otherwise land at random in one run or another and swamp short runs."""
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        value = body()
        return time.process_time() - started, value
    finally:
        gc.enable()


def measure(entries_per_language: int, texts_per_language: int) -> dict:
    """The child process's body."""
    import ahocorasick  # noqa: F401 - imported before the baseline, as in a worker that already ran a batch
    import numpy as np
    import pyarrow  # noqa: F401

    from metaclip_spark.matching.substrings import LanguageMatchers

    lists = {code: language_entries(code, entries_per_language) for code in LANGUAGES}
    texts = {code: language_texts(code, words, texts_per_language, SEED) for code, words in lists.items()}
    gc.collect()
    baseline = harness.rss_mb()
    matchers = LanguageMatchers(lists, lists.__getitem__, max_bytes=1 << 40)
    languages = {}
    for code in LANGUAGES:
        cpu, matcher = _cpu(lambda: matchers.matcher(code))
        languages[code] = {"script": LANGUAGES[code], "entries": len(lists[code]),
                           "single_character_entries": sum(len(e) == 1 for e in lists[code]),
                           "build_cpu_seconds": round(cpu, 2),
                           "automaton_mb": round(matcher.memory_bytes / 2**20, 1)}
    gc.collect()
    loaded = harness.rss_mb()
    memory = {"languages_loaded": len(matchers.loaded), "entries_total": sum(map(len, lists.values())),
              "worker_rss_added_mb": round(loaded - baseline, 1),
              "automata_total_mb": round(matchers.memory_bytes / 2**20, 1),
              "build_cpu_seconds_total": round(sum(v["build_cpu_seconds"] for v in languages.values()), 2)}
    for code in LANGUAGES:
        automaton = matchers.matcher(code)._automaton
        codes = [code] * len(texts[code])
        library, bare = [], []
        for _ in range(ROUNDS):  # interleaved: a burst of load from other processes hits both sides alike
            cpu, ids = _cpu(lambda: matchers.match_many(codes, texts[code]))
            library.append(cpu)
            cpu, bare_ids = _cpu(lambda: bare_loop(automaton, texts[code]))
            bare.append(cpu)
        assert ids == bare_ids, f"{code}: the library and the bare loop disagree"
        matches = np.array([len(x) for x in ids])
        n = len(texts[code])
        languages[code].update({
            "texts": n, "mean_characters": round(float(np.mean([len(t) for t in texts[code]])), 1),
            "matched_share": round(float((matches > 0).mean()), 3),
            "mean_entries_per_text": round(float(matches.mean()), 1),
            "library_texts_per_cpu_s": round(n / min(library)),
            "bare_texts_per_cpu_s": round(n / min(bare)),
            "library_vs_bare": round(min(bare) / min(library), 3),
            "library_cpu_seconds_all": [round(x, 3) for x in library],
            "bare_cpu_seconds_all": [round(x, 3) for x in bare],
        })
    # The same texts through the library in 10k-row batches twice: grouped by language (each language's texts
    # together, as above) and shuffled (what a Spark partition of a multilingual pool holds).
    rng = np.random.Generator(np.random.PCG64(SEED))
    grouped = [(code, text) for code in LANGUAGES for text in texts[code]]
    shuffled = [grouped[i] for i in rng.permutation(len(grouped))]

    def batches(rows):
        for start in range(0, len(rows), 10_000):
            part = rows[start:start + 10_000]
            matchers.match_many([code for code, _ in part], [text for _, text in part])

    runs = {"grouped": [], "shuffled": []}
    for _ in range(ROUNDS):
        for name, rows in (("grouped", grouped), ("shuffled", shuffled)):
            runs[name].append(_cpu(lambda: batches(rows))[0])
    mixed_result = {"texts": len(grouped), "batch_rows": 10_000,
                    "grouped_texts_per_cpu_s": round(len(grouped) / min(runs["grouped"])),
                    "shuffled_texts_per_cpu_s": round(len(grouped) / min(runs["shuffled"])),
                    "shuffled_vs_grouped": round(min(runs["grouped"]) / min(runs["shuffled"]), 3),
                    "cpu_seconds_all": runs}
    by_script: dict[str, dict] = {}
    for code, row in languages.items():
        group = by_script.setdefault(row["script"], {"languages": [], "texts": 0, "library_cpu": 0.0, "bare_cpu": 0.0,
                                                     "matches": 0.0})
        group["languages"].append(code)
        group["texts"] += row["texts"]
        group["library_cpu"] += row["texts"] / row["library_texts_per_cpu_s"]
        group["bare_cpu"] += row["texts"] / row["bare_texts_per_cpu_s"]
        group["matches"] += row["mean_entries_per_text"] * row["texts"]
    scripts = {name: {"languages": g["languages"], "texts": g["texts"],
                      "mean_entries_per_text": round(g["matches"] / g["texts"], 1),
                      "library_texts_per_cpu_s": round(g["texts"] / g["library_cpu"]),
                      "bare_texts_per_cpu_s": round(g["texts"] / g["bare_cpu"]),
                      "library_vs_bare": round(g["bare_cpu"] / g["library_cpu"], 3)}
               for name, g in by_script.items()}
    return {"languages": languages, "scripts": scripts, "memory": memory, "mixed": mixed_result,
            "entries_per_language_max": entries_per_language, "vocabulary": VOCABULARY, "rounds": ROUNDS,
            "text_characters": TEXT_CHARS}


def run(work_dir: Path, factor: float = 1.0, log=print) -> dict:
    entries = max(5_000, int(ENTRIES * factor))
    texts = max(2_000, int(TEXTS * factor))
    log(f"worldwide: {len(LANGUAGES)} languages, up to {entries:,} entries and {texts:,} texts each, in a fresh process")
    return harness.run_child("bench_worldwide.py", ["--entries", str(entries), "--texts", str(texts)],
                             work_dir / "worldwide.log", timeout=1800)


def markdown(r: dict) -> list[str]:
    lines = ["", "## 8. Worldwide matching per script class (bench/bench_worldwide.py)", ""]
    if "languages" not in r:
        return lines + [r.get("skipped") or f"error: {r.get('error')}"]
    m = r["memory"]
    lines += [f"Per-language lists: each language's most frequent words in wordfreq (up to "
              f"{r['entries_per_language_max']:,}); texts drawn from its top {r['vocabulary']:,} words with Zipf "
              f"weights, spaced ~{sum(r['text_characters']['spaced']) / 2:.0f} characters, or unspaced "
              f"~{sum(r['text_characters']['no_space']) / 2:.0f} characters for zh/ja (Thai: no wordfreq list; CJK "
              f"has the same no-space rule). CPU seconds (cyclic GC held off while timing), best of {r['rounds']} "
              "interleaved runs; the library is LanguageMatchers.match_many (what the worldwide match batches call), "
              "the bare loop the same automaton over the same texts; ids checked equal.", "",
              "| script | languages | mean entries per text | library texts/CPU-s | bare loop texts/CPU-s | "
              "library / bare |", "|---|---|---|---|---|---|"]
    for name, s in r["scripts"].items():
        lines.append(f"| {name} | {', '.join(s['languages'])} | {s['mean_entries_per_text']} | "
                     f"{s['library_texts_per_cpu_s']:,} | {s['bare_texts_per_cpu_s']:,} | {s['library_vs_bare']} |")
    x = r["mixed"]
    lines += ["", f"All {x['texts']:,} texts through the library in batches of {x['batch_rows']:,} rows: "
                  f"{x['shuffled_texts_per_cpu_s']:,} texts/CPU-s in random order (a multilingual partition), "
                  f"{x['grouped_texts_per_cpu_s']:,} grouped by language: {x['shuffled_vs_grouped']} (the cost of "
                  "switching automata row by row).", "",
              "| language | entries (single characters) | build, CPU s | automaton, MB | mean characters | matched | "
              "entries per text | library texts/CPU-s | library / bare |", "|---|---|---|---|---|---|---|---|---|"]
    for code, v in r["languages"].items():
        lines.append(f"| {code} ({v['script']}) | {v['entries']:,} ({v['single_character_entries']:,}) | "
                     f"{v['build_cpu_seconds']} | {v['automaton_mb']} | {v['mean_characters']} | "
                     f"{v['matched_share']:.0%} | {v['mean_entries_per_text']} | {v['library_texts_per_cpu_s']:,} | "
                     f"{v['library_vs_bare']} |")
    lines += ["", f"Worker memory with all {m['languages_loaded']} automata loaded ({m['entries_total']:,} entries): "
                  f"RSS +{m['worker_rss_added_mb']} MB over the process before the first build (lists excluded; the "
                  f"automata's own count: {m['automata_total_mb']} MB); {m['build_cpu_seconds_total']} CPU seconds to "
                  "build them all. `worldwide.automata_max_mb` (default 2048) bounds that total per worker."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--texts", type=int, default=TEXTS)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    harness.write_result(args.result, measure(args.entries, args.texts))


if __name__ == "__main__":
    main()
