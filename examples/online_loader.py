"""A PyTorch-style iterable over the pairs `export --online` wrote, balanced again at every epoch.

It does not import torch: with torch, mix it into an IterableDataset and hand it torch's worker info, e.g.

    import torch
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info

    class CuratedPairs(OnlineCuratedPairs, IterableDataset):
        pass

    dataset = CuratedPairs("s3://bucket/online-export", seed=0, rank=rank, world_size=world_size,
                           worker_info=get_worker_info)
    loader = DataLoader(dataset, batch_size=256, num_workers=8)
    for epoch in range(epochs):
        dataset.set_epoch(epoch)  # like DistributedSampler.set_epoch: a new subset each epoch
        for batch in loader:
            ...

Each (rank, worker) reads its own share of the files, in order, and keeps a pair when the seeded draw for
(seed, epoch, uuid, text, entry ids) says so (of an export with --one-text-per-image, first one text per image,
picked anew each epoch by (seed, epoch, uuid)): together the workers yield exactly the subset of that epoch,
whatever the number of ranks and workers, with no coordination between them. Here a row is a dict of the
exported columns; a real loader would fetch the image (the img2dataset output, by uuid) and tokenize the text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import fsspec
import pyarrow.parquet as pq

from metaclip_spark.export.online import EntryProbabilities, OnlineBalancer


class OnlineCuratedPairs:
    def __init__(self, export_dir: str, seed: int = 0, rank: int = 0, world_size: int = 1,
                 worker_info: Callable[[], object] | None = None, batch_rows: int = 8192):
        self.export_dir = export_dir.rstrip("/")
        self.fs, self.path = fsspec.core.url_to_fs(self.export_dir)
        self.balancer = OnlineBalancer(EntryProbabilities.from_parquet(self.export_dir), seed)
        self.files = sorted(self.fs.glob(f"{self.path}/pairs/*.parquet"))
        record = f"{self.path}/_EXPORT.json"  # --one-text-per-image: a text per image, picked each epoch
        self.pick_per_epoch = self.fs.exists(record) and json.loads(self.fs.cat(record)).get("text_pick") == "per_epoch"
        self.rank, self.world_size = rank, world_size
        self.worker_info = worker_info  # torch.utils.data.get_worker_info, or None in the main process
        self.batch_rows = batch_rows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _my_files(self) -> list[str]:
        """Files of this (rank, worker): file i goes to reader i mod (world_size x workers)."""
        info = self.worker_info() if self.worker_info else None
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        readers, reader = self.world_size * workers, self.rank * workers + worker
        return self.files[reader::readers]

    def _kept(self, rows: list[dict]) -> Iterator[dict]:
        if self.pick_per_epoch:  # one text per image, picked anew each epoch, then its keep draw (MetaCLIP 2's order)
            picked = self.balancer.picked([r["uuid"] for r in rows], [r["text"] for r in rows], self.epoch)
            rows = [row for row, chosen in zip(rows, picked) if chosen]
        langs = [r.get("metadata_lang") for r in rows]
        keep = self.balancer.keep_batch([r["uuid"] for r in rows], [r["text"] for r in rows],
                                        [r["entry_ids"] for r in rows], self.epoch, langs)
        yield from (row for row, kept in zip(rows, keep) if kept)

    def __iter__(self) -> Iterator[dict]:
        for file in self._my_files():
            pending: list[dict] = []  # the last image's rows of a batch: its texts may go on in the next one
            with self.fs.open(file, "rb") as f:
                for batch in pq.ParquetFile(f).iter_batches(self.batch_rows):
                    rows = pending + batch.to_pylist()
                    cut = len(rows)
                    if self.pick_per_epoch:
                        while cut and rows[cut - 1]["uuid"] == rows[-1]["uuid"]:
                            cut -= 1
                    rows, pending = rows[:cut], rows[cut:]
                    yield from self._kept(rows)
            yield from self._kept(pending)
