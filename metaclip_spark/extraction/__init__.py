"""Extract: web archives (WARC, WAT) streamed record by record into image-text pairs, with language ID.

Pure modules turn bytes into pairs (webarchive -> webpage / wat, gzip_members underneath); job.py is the Spark stage
that runs them over the files of a listing."""
