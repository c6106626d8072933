"""Match: texts against the metadata's entries by substring at token boundaries (substrings), with the list of each
text's language (lang_codes); the match stage on Spark, each text against its own list (spark)."""
