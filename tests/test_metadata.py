"""Loading metadata lists and the errors a malformed file gives."""

import gzip
import json

import pytest

from metaclip_spark.errors import ConfigError
from metaclip_spark.metadata.lists import load_metadata, metadata_digest


def test_json_array_keeps_file_order_and_exact_strings(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(["zebra", "Apple", "apple", "New York"]), encoding="utf-8")
    assert load_metadata(path) == ["zebra", "Apple", "apple", "New York"]


def test_text_file_one_entry_per_line_and_gzip(tmp_path):
    path = tmp_path / "entries.txt.gz"
    path.write_bytes(gzip.compress("dog\r\nhot dog\ncafé\n".encode("utf-8")))
    assert load_metadata(path) == ["dog", "hot dog", "café"]


def test_digest_depends_on_content_and_order_not_on_file_format(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(["a", "b"]))
    (tmp_path / "a.txt").write_text("a\nb\n")
    assert metadata_digest(load_metadata(tmp_path / "a.json")) == metadata_digest(load_metadata(tmp_path / "a.txt"))
    assert metadata_digest(["a", "b"]) != metadata_digest(["b", "a"])
    assert metadata_digest(["ab"]) != metadata_digest(["a", "b"])


@pytest.mark.parametrize("content, message", [
    ('{"entries": ["a"]}', "JSON array"),
    ('["a", 3, "b"]', "entry 1 is int 3"),
    ('["a", null]', "entry 1 is NoneType"),
    ("[]", "holds no entries"),
    ("", "holds no entries"),
    ('["a", "b"', "not valid JSON"),
])
def test_malformed_metadata_names_file_and_position(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as error:
        load_metadata(path)
    assert str(path) in str(error.value)


def test_bad_encoding_names_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("dog\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8.*line 2"):
        load_metadata(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_metadata(tmp_path / "nope.json")
