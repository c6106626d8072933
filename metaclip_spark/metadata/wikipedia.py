"""Wikipedia unigram and bigram counts from an XML dump (bz2), as a Spark job (curation-spec section 2, 3-4).

Reading: the dump is read as text split at "</page>" (Spark's text source with a custom line separator), so
one record is one page and Hadoop's splittable bz2 codec lets one big dump file feed many tasks. Only articles
count: namespace 0, not a redirect.

Tokenisation (the MetaCLIP paper fixes none; ours, chosen so that counted terms are the strings that can match
a caption after MetaCLIP's spacing):
1. the page text is XML-unescaped; comments, <ref>s, <math>/<gallery>/<pre>-like blocks, HTML tags, templates
   {{...}} and tables {|...|} are removed; [[target|label]] links become label ([[target]] becomes target);
   File/Image/Media/Category and interlanguage links are removed whole; [url label] becomes label, bare URLs
   go; '' and ''' quotes, heading "=" runs, list markers at line start and __MAGIC__ words are removed; HTML
   entities (&nbsp;, &ndash;) are decoded last.
2. a token is a run of letters, combining marks and digits, with single inner hyphens or apostrophes kept
   ("well-known", "Achilles'" -> "Achilles", "don't"; Devanagari vowel signs stay inside their word); case is kept
   ("Apple" and "apple" are different unigrams).
3. a bigram is two consecutive tokens separated by spaces or tabs only (not a newline, not punctuation), written
   "w1 w2": "Paris, France" yields no bigram, since after spacing it can never match "Paris France".
4. languages written without spaces (metadata/segmentation.py: Chinese, Japanese, Thai, Lao, ...): each run of rule 2 is
   cut into words by the language's segmenter; a bigram is two words next to each other inside one run (the
   metadata writes it without the space, "北京" + "大学" -> "北京大学", as MetaCLIP 2 does).

Namespace links ([[File:...]], [[Category:...]]) are removed by their English names and by the names the dump's
own <siteinfo> gives namespaces -2, 6 and 14 ("Datei", "ファイル", "Kategorie"), read from the first dump file's
header on the driver.

Counting is a Spark reduction: Python tasks count the terms of a bounded batch of pages and Spark sums those
partial counts. Nothing that grows with the dump reaches the driver except the entries that pass the filters.
PMI = log2(c(w1 w2) * N) - log2(c(w1) * c(w2)), N = total number of tokens (NLTK's bigram PMI); a bigram is kept
when its PMI is >= the bigram threshold, both words needing only to be in the unigram count table with any count
(curation-spec section 2: the unigram floor is for unigram entries only). Since c(w1 w2) <= min(c(w1), c(w2)),
PMI <= log2(N / max(c(w1), c(w2))): only words and bigrams with count <= N / 2^threshold can pass, so the join
reads only those (for English Wikipedia at 30, words seen about four times or fewer).
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import regex

PAGE_END = "</page>"

_NS = re.compile(r"<ns>\s*(-?\d+)\s*</ns>")
_TEXT = re.compile(r"<text\b[^>]*?(?:/>|>(.*?)</text>)", re.S)
_REDIRECT = re.compile(r"<redirect\b")

_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_REF = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>", re.S | re.I)
_DROPPED_ELEMENTS = re.compile(
    r"<(math|chem|gallery|timeline|syntaxhighlight|source|pre|code|score|hiero|imagemap|graph|mapframe)\b[^>]*>"
    r".*?</\1\s*>", re.S | re.I)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")  # innermost first, repeated until none is left
_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)  # innermost first
_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")  # innermost first: captions' links go before the File link around them
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]*\s*([^\]]*)\]")
_BARE_URL = re.compile(r"(?:https?|ftp)://\S+")
_QUOTES = re.compile(r"'{2,}")
_HEADING = re.compile(r"^=+\s*(.*?)\s*=+\s*$", re.M)
_LIST_MARKERS = re.compile(r"^[*#:;]+\s*", re.M)
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_REMOVED_LINK_PREFIXES = frozenset({"file", "image", "media", "category"})
# Namespaces whose links are not article text: Media (-2), File (6), Category (14).
LINK_NAMESPACES = ("-2", "6", "14")
_SITEINFO_NAMESPACE = re.compile(r'<namespace\b[^>]*\bkey="(-?\d+)"[^>]*>([^<]*)</namespace>')
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z]+)*$")

TOKEN = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['\u2019-][\p{L}\p{M}\p{N}]+)*")
_WORD_CHARACTER = regex.compile(r"[\p{L}\p{M}\p{N}]")

# Term kinds of the count table.
PAGE, UNIGRAM, BIGRAM = 0, 1, 2


def page_article_text(record: str) -> tuple[str, str | None]:
    """One "</page>"-split record -> (kind, wikitext): kind is "article" (namespace 0, not a redirect, with its
    XML-unescaped wikitext), "redirect", "other_namespace", "no_text", or "not_a_page" (dump header or tail)."""
    start = record.find("<page>")
    if start < 0:
        return "not_a_page", None
    page = record[start:]
    ns = _NS.search(page)
    if ns is None or ns.group(1) != "0":
        return "other_namespace", None
    text_start = page.find("<text")
    if _REDIRECT.search(page, 0, text_start if text_start >= 0 else len(page)):
        return "redirect", None
    text = _TEXT.search(page)
    if text is None or not text.group(1):
        return "no_text", None
    return "article", html.unescape(text.group(1))


def _repeat(pattern: re.Pattern, replacement, text: str) -> str:
    while True:
        text, replaced = pattern.subn(replacement, text)
        if not replaced:
            return text


def _link_text(match: re.Match, removed_prefixes: frozenset[str] = _REMOVED_LINK_PREFIXES) -> str:
    inner = match.group(1)
    target, pipe, label = inner.partition("|")
    target = target.strip()
    visible = target.startswith(":")  # [[:Category:X]] shows the link instead of categorising the page
    prefix = target.lstrip(":").partition(":")[0].strip().lower() if ":" in target.lstrip(":") else ""
    if not visible and (prefix in removed_prefixes or _INTERLANGUAGE.match(prefix)):
        return ""
    if pipe:
        return label.rpartition("|")[2] if label.strip() else target.lstrip(":")
    return target.lstrip(":")


def clean_wikitext(wikitext: str, link_namespaces: Iterable[str] = ()) -> str:
    """Plain text of an article's wikitext (rule 1 of the module doc); link_namespaces: the dump's own names of
    the Media/File/Category namespaces, removed like the English ones."""
    removed = _REMOVED_LINK_PREFIXES | {name.lower() for name in link_namespaces}
    text = _COMMENT.sub("", wikitext)
    text = _REF.sub("", text)
    text = _DROPPED_ELEMENTS.sub("", text)
    text = _TAG.sub("", text)
    text = _repeat(_TEMPLATE, "", text)
    text = _repeat(_TABLE, "", text)
    text = _repeat(_LINK, lambda link: _link_text(link, removed), text)
    text = _EXTERNAL_LINK.sub(r"\1", text)
    text = _BARE_URL.sub("", text)
    text = _QUOTES.sub("", text)
    text = _HEADING.sub(r"\1", text)
    text = _LIST_MARKERS.sub("", text)
    text = _MAGIC_WORD.sub("", text)
    return html.unescape(text)


def text_terms(text: str, segment: Callable[[str], list[str]] | None = None) -> tuple[list[str], list[str]]:
    """(tokens, bigrams "w1 w2") of plain text: rules 2 and 3 of the module doc, or rule 4 with a segmenter."""
    tokens: list[str] = []
    bigrams: list[str] = []
    if segment is not None:
        for run in TOKEN.finditer(text):
            previous = None
            for word in segment(run.group(0)):
                if not _WORD_CHARACTER.search(word) or " " in word:  # a mark or space the segmenter kept apart
                    previous = None
                    continue
                tokens.append(word)
                if previous is not None:
                    bigrams.append(f"{previous} {word}")
                previous = word
        return tokens, bigrams
    previous_end = -1
    for match in TOKEN.finditer(text):
        token = match.group(0)
        start = match.start()
        if tokens and start > previous_end and not text[previous_end:start].strip(" \t"):
            bigrams.append(f"{tokens[-1]} {token}")
        tokens.append(token)
        previous_end = match.end()
    return tokens, bigrams


def article_terms(wikitext: str, segment: Callable[[str], list[str]] | None = None,
                  link_namespaces: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(tokens, bigrams) of one article's wikitext."""
    return text_terms(clean_wikitext(wikitext, link_namespaces), segment)


def count_records(records: Iterable[str], lang: str = "en", link_namespaces: Iterable[str] = ()) -> Counter:
    """Partial counts of a batch of page records, keyed (kind, term): (PAGE, page kind), (UNIGRAM, token),
    (BIGRAM, "w1 w2"). `lang` picks the segmenter of a language written without spaces (metadata/segmentation.py)."""
    from metaclip_spark.metadata.segmentation import segmenter_for

    segment = segmenter_for(lang)
    link_namespaces = tuple(link_namespaces)
    counts: Counter = Counter()
    for record in records:
        kind, wikitext = page_article_text(record)
        counts[(PAGE, kind)] += 1
        if wikitext is not None:
            tokens, bigrams = article_terms(wikitext, segment, link_namespaces)
            counts.update((UNIGRAM, t) for t in tokens)
            counts.update((BIGRAM, b) for b in bigrams)
    return counts


def siteinfo_link_namespaces(header: str) -> list[str]:
    """The local names of the Media, File and Category namespaces in a dump's <siteinfo> header."""
    return [name.strip() for key, name in _SITEINFO_NAMESPACE.findall(header)
            if key in LINK_NAMESPACES and name.strip()]


def dump_link_namespaces(spark, dump_paths: list[str], header_chars: int = 65536) -> list[str]:
    """siteinfo_link_namespaces of the first dump file, read on the driver through Hadoop's file system and codecs
    (any scheme Spark reads, bz2 or plain); [] when there is no header to read."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for pattern in dump_paths:
        path = jvm.org.apache.hadoop.fs.Path(pattern)
        statuses = path.getFileSystem(conf).globStatus(path)
        if not statuses:
            continue
        first = sorted((status.getPath() for status in statuses), key=lambda p: p.toString())[0]
        stream = first.getFileSystem(conf).open(first)
        codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(first)
        if codec is not None:
            stream = codec.createInputStream(stream)
        try:
            reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
            buffer = jvm.java.lang.StringBuilder()
            line = reader.readLine()
            while line is not None and buffer.length() < header_chars:
                buffer.append(line).append("\n")
                if "</siteinfo>" in line or "<page>" in line:
                    break
                line = reader.readLine()
            return siteinfo_link_namespaces(buffer.toString())
        finally:
            stream.close()
    return []


def bigram_pmi(c12: int, c1: int, c2: int, n: int) -> float:
    """NLTK's bigram PMI in bits: log2(c(w1 w2) * N) - log2(c(w1) * c(w2))."""
    return math.log2(c12 * n) - math.log2(c1 * c2)


def max_word_count(n: int, min_pmi: float) -> float | None:
    """The largest word or bigram count that can still reach min_pmi (N / 2^min_pmi), None for no bound; a
    relative slack keeps rounding from dropping a bigram exactly at the threshold."""
    if min_pmi <= 0:
        return None
    return n / 2.0 ** min_pmi * (1 + 1e-9)


COUNT_SCHEMA = "kind byte, term string, count long"


def _count_batches(batches: Iterator, pages_per_batch: int, lang: str, link_namespaces: tuple[str, ...]) -> Iterator:
    import pyarrow as pa

    for batch in batches:
        for offset in range(0, batch.num_rows, pages_per_batch):
            records = batch.slice(offset, pages_per_batch).column(0).to_pylist()
            counts = count_records((record for record in records if record is not None), lang, link_namespaces)
            if counts:
                yield pa.RecordBatch.from_pydict({
                    "kind": pa.array([kind for kind, _ in counts], pa.int8()),
                    "term": pa.array([term for _, term in counts], pa.string()),
                    "count": pa.array(list(counts.values()), pa.int64()),
                })


def term_counts(spark, dump_paths: list[str], pages_per_batch: int = 200, lang: str = "en",
                link_namespaces: Iterable[str] = ()):
    """DataFrame (kind, term, count): summed counts of every term in the dumps (and of page kinds, kind 0)."""
    from pyspark.sql import functions as F

    from pyspark.errors import AnalysisException

    from metaclip_spark.errors import InputError

    try:
        records = spark.read.option("lineSep", PAGE_END).text(list(dump_paths))
    except AnalysisException as e:  # a missing file or a glob matching nothing
        raise InputError(f"Wikipedia dump not readable: {e.getMessage().splitlines()[0]}") from None
    # Batches of pages bound the memory of a task's partial counts; Spark sums them in a shuffle.
    link_namespaces = tuple(link_namespaces)
    partial = records.select("value").mapInArrow(
        lambda batches: _count_batches(batches, pages_per_batch, lang, link_namespaces), COUNT_SCHEMA)
    return partial.groupBy("kind", "term").agg(F.sum("count").alias("count"))


@dataclass
class WikipediaCounts:
    """What the job keeps: page counters, N, and the unigrams and bigrams that passed the thresholds."""

    pages: dict[str, int]
    tokens_total: int
    unigrams_distinct: int
    bigrams_distinct: int
    unigrams: list[tuple[str, int]] = field(default_factory=list)  # count descending, then term
    bigrams: list[tuple[str, int, float]] = field(default_factory=list)  # PMI descending, then term


def count_wikipedia(spark, dump_paths: list[str], unigram_min_count: int = 100, bigram_min_pmi: float = 30.0,
                    counts_output: str | None = None, lang: str = "en") -> WikipediaCounts:
    """Run the counting job over the dumps of one language; keep unigrams with count >= unigram_min_count and
    bigrams with PMI >= bigram_min_pmi (their words in the count table with any count). With counts_output, the
    full count table is also written as Parquet (kind, term, count) so other thresholds can be tried without
    recounting. `lang` picks the segmenter of a language written without spaces (checked here, on the driver,
    before any task starts)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from metaclip_spark.metadata.segmentation import segmenter_for

    segmenter_for(lang)  # a missing segmenter is a ConfigError now, not a failed task later
    counts = term_counts(spark, dump_paths, lang=lang, link_namespaces=dump_link_namespaces(spark, dump_paths))
    if counts_output:
        counts.write.mode("overwrite").parquet(counts_output)
        counts = spark.read.parquet(counts_output)
    else:
        counts = counts.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        # One small job: per term kind, distinct terms and total count, plus the page counters (kind 0 rows).
        summary = (counts.groupBy("kind")
                   .agg(F.count(F.lit(1)).alias("distinct"), F.sum("count").alias("total"),
                        F.map_from_entries(F.collect_list(F.when(F.col("kind") == PAGE, F.struct("term", "count"))))
                        .alias("pages"))
                   .collect())
        by_kind = {row["kind"]: row for row in summary}
        pages = {term: int(count) for term, count in by_kind[PAGE]["pages"].items()} if PAGE in by_kind else {}
        n = int(by_kind[UNIGRAM]["total"]) if UNIGRAM in by_kind else 0
        kept = (counts.where((F.col("kind") == UNIGRAM) & (F.col("count") >= unigram_min_count))
                .select("term", "count"))
        unigrams = [(r["term"], int(r["count"])) for r in kept.orderBy(F.desc("count"), "term").collect()]
        bigrams: list[tuple[str, int, float]] = []
        if n:
            bound = max_word_count(n, bigram_min_pmi)
            words = counts.where(F.col("kind") == UNIGRAM)
            pairs = counts.where(F.col("kind") == BIGRAM)
            if bound is not None:  # nothing above the bound can pass: read only what can
                words = words.where(F.col("count") <= F.lit(bound))
                pairs = pairs.where(F.col("count") <= F.lit(bound))
            first = words.select(F.col("term").alias("w1"), F.col("count").alias("c1"))
            second = words.select(F.col("term").alias("w2"), F.col("count").alias("c2"))
            pairs = (pairs.select("term", F.col("count").alias("c12"), F.split("term", " ").getItem(0).alias("w1"),
                                  F.split("term", " ").getItem(1).alias("w2"))
                     .join(first, "w1").join(second, "w2"))
            # Doubles: c(w1 w2) * N overflows no long here, and log2 is taken of each product as the rule reads
            # (bigram_pmi is the same formula in Python).
            pmi = (F.log2(F.col("c12").cast("double") * F.lit(float(n)))
                   - F.log2(F.col("c1").cast("double") * F.col("c2").cast("double")))
            rows = (pairs.select("term", "c12", pmi.alias("pmi")).where(F.col("pmi") >= float(bigram_min_pmi))
                    .orderBy(F.desc("pmi"), "term").collect())
            bigrams = [(r["term"], int(r["c12"]), float(r["pmi"])) for r in rows]
        return WikipediaCounts(
            pages=pages, tokens_total=n,
            unigrams_distinct=int(by_kind[UNIGRAM]["distinct"]) if UNIGRAM in by_kind else 0,
            bigrams_distinct=int(by_kind[BIGRAM]["distinct"]) if BIGRAM in by_kind else 0,
            unigrams=unigrams, bigrams=bigrams)
    finally:
        if not counts_output:
            counts.unpersist()
