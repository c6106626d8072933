"""The output root: its layout and commit markers (layout), atomic tables and JSON (tables), one writer (lease), the
records it keeps (records), the column names its tables share (columns)."""
