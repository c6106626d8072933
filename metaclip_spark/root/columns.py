"""The column names the root's tables share, and the groups the report breaks pairs down by (no pyspark import:
`status` and `plan --counts-only` read them without Spark)."""

from __future__ import annotations

# matched/ and curated/: the ids of the entries a pair's text matches (sorted ascending, never empty), positions in
# the list it was matched against.
ENTRY_IDS = "entry_ids"
# curated/: a pair's keep probability P = 1 - prod(1 - p_e).
KEEP_PROB = "keep_prob"
# Worldwide (a metadata set): the language whose list a pair is matched against (a code naming one list of the set;
# `other` when it has no language). Its matched/, curated/ and counts/ tables carry it; a v1 root's tables, matched
# against its one list, do not.
METADATA_LANG = "metadata_lang"
# Columns the report breaks pairs down by, when a table has them; a null value is shown as NO_VALUE.
GROUP_COLUMNS = ("crawl", "lang", "text_source")
# ... and the ones ingest counts pairs by (a worldwide pool's pairs per metadata language too).
PAIRS_BY_COLUMNS = GROUP_COLUMNS + (METADATA_LANG,)
NO_VALUE = "(none)"


def group_value(value) -> str:
    return NO_VALUE if value is None else str(value)


def pairs_by_group(pairs, skipped_column: str | None = None,
                   flag_column: str | None = None) -> tuple[int, dict[str, dict[str, int]], dict]:
    """(pairs, {column: {value: pairs}}, {reason: rows}) of a DataFrame for the group columns it has (but `crawl`),
    in one aggregation of at most (languages x text sources x skip reasons) rows: recorded at ingest so the report
    never reads the input again. Rows with a reason in `skipped_column` are not pairs: they are counted by reason
    only. `flag_column` (a boolean column, when the table has it): the pairs where it is true are counted too, under
    its name in the last dict."""
    columns = [c for c in PAIRS_BY_COLUMNS if c != "crawl" and c in pairs.columns]
    flag_column = flag_column if flag_column in pairs.columns else None
    rows = pairs.groupBy(*columns, *[c for c in (skipped_column, flag_column) if c]).count().collect()
    by: dict[str, dict[str, int]] = {c: {} for c in columns}
    skipped: dict[str, int] = {}
    for row in rows:
        if skipped_column and row[skipped_column] is not None:
            skipped[row[skipped_column]] = skipped.get(row[skipped_column], 0) + int(row["count"])
            continue
        if flag_column and row[flag_column]:
            skipped[flag_column] = skipped.get(flag_column, 0) + int(row["count"])
        for c in columns:
            value = group_value(row[c])
            by[c][value] = by[c].get(value, 0) + int(row["count"])
    total = sum(int(row["count"]) for row in rows if not skipped_column or row[skipped_column] is None)
    return total, by, skipped
