"""Ingestion into an output root: which input (sources, input_checks, manifest, crawl_index), read how (pool for
tables of pairs, extraction for web archives), in committed units (ingest), one de-duplicated pool (dedup, pair_keys)."""
