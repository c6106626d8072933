"""The report's plots (matplotlib, Agg canvas, no pyplot state): the pictures of the MetaCLIP paper's balancing.

Each function takes numbers already reduced by Spark (per-entry count vectors, histogram bins) and returns a
Figure; `figure_png` renders one to PNG bytes.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# A log-scaled curve over ~500k ranks looks the same drawn through a few thousand geometrically spaced points.
CURVE_POINTS = 4000
BEFORE_STYLE = {"color": "#1f77b4", "label": "before balancing (matched)"}
AFTER_STYLE = {"color": "#d62728", "label": "after balancing (curated)"}


def _figure() -> tuple[Figure, object]:
    figure = Figure(figsize=(7.5, 4.8), dpi=100)
    # Fixed margins: an automatic layout engine doubles the rendering time of these simple plots.
    figure.subplots_adjust(left=0.11, right=0.97, bottom=0.12, top=0.92)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _sorted_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    return np.sort(counts[counts > 0])[::-1]


def _curve_ranks(n: int) -> np.ndarray:
    """0-based ranks to draw: all of them for short curves, geometrically spaced ones (first and last kept) else."""
    if n <= CURVE_POINTS:
        return np.arange(n)
    return np.unique(np.concatenate([np.geomspace(1, n, CURVE_POINTS).astype(np.int64) - 1, [n - 1]]))


def _note_empty(axes, what: str) -> None:
    axes.text(0.5, 0.5, f"no {what}", transform=axes.transAxes, ha="center", va="center", color="gray")


def _before_after(axes, before: np.ndarray, after: np.ndarray, heights, **line) -> bool:
    """Draws `heights(sorted counts)` against entry rank for the counts before and after balancing; False when
    neither has a matched entry."""
    drawn = False
    for counts, style in ((before, BEFORE_STYLE), (after, AFTER_STYLE)):
        ordered = _sorted_counts(counts)
        if ordered.size:
            ranks = _curve_ranks(ordered.size)
            axes.plot(ranks + 1, heights(ordered)[ranks], linewidth=1.4, **style, **line)
            drawn = True
    return drawn


def _by_entry_rank(axes, drawn: bool, ylabel: str, title: str, legend: str) -> None:
    axes.set_xscale("log")
    axes.set_xlabel("entry rank (entries sorted by count)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if not drawn:
        _note_empty(axes, "matched entries")
    axes.legend(loc=legend)
    axes.grid(True, which="major", alpha=0.3)


def plot_entry_counts(before: np.ndarray, after: np.ndarray, t: int | np.ndarray) -> Figure:
    """Sorted per-entry counts before and after balancing, log-log, with t: the head flattened to t, the tail kept.
    With a t per entry (worldwide: each entry's language's), lines at the smallest and largest t of matched entries."""
    figure, axes = _figure()
    drawn = _before_after(axes, before, after, lambda ordered: ordered, drawstyle="steps-post")
    if np.ndim(t) == 0:
        axes.axhline(t, color="black", linestyle="--", linewidth=1, label=f"t = {int(t):,}")
    else:
        matched = np.asarray(t)[np.asarray(before) > 0]
        low, high = (int(matched.min()), int(matched.max())) if matched.size else (1, 1)
        axes.axhline(low, color="black", linestyle="--", linewidth=1,
                     label=f"t per language: {low:,} to {high:,}" if high > low else f"t = {low:,}")
        if high > low:
            axes.axhline(high, color="black", linestyle="--", linewidth=1)
    axes.set_yscale("log")
    _by_entry_rank(axes, drawn, "matched texts per entry", "Entry counts before and after balancing", "upper right")
    return figure


def plot_cumulative_share(before: np.ndarray, after: np.ndarray, t: int | np.ndarray) -> Figure:
    """Share of all matches held by the k largest entries, against k; the rank where counts fall under t marked
    (with a t per entry, the number of entries over their own t)."""
    figure, axes = _figure()
    drawn = _before_after(axes, before, after, lambda ordered: np.cumsum(ordered) / ordered.sum())
    over_t = int((np.asarray(before) > t).sum())
    if over_t:
        label = f"{over_t:,} entries over t = {int(t):,}" if np.ndim(t) == 0 else \
            f"{over_t:,} entries over their language's t"
        axes.axvline(over_t, color="black", linestyle="--", linewidth=1, label=label)
    axes.set_ylim(0, 1.02)
    _by_entry_rank(axes, drawn, "cumulative share of matches", "Cumulative share of matches by entry rank",
                   "lower right")
    return figure


def plot_keep_probabilities(bin_pairs: list[int]) -> Figure:
    """Histogram of keep probabilities P = 1 - prod(1 - p_e) over all matched pairs (bins of equal width on [0, 1])."""
    figure, axes = _figure()
    bins = len(bin_pairs)
    heights = np.asarray(bin_pairs, dtype=np.int64)
    edges = np.arange(bins) / bins
    axes.bar(edges, heights, width=1.0 / bins, align="edge", color=BEFORE_STYLE["color"], edgecolor="white",
             linewidth=0.4)
    if heights.any():
        axes.set_yscale("log")  # pairs that match a tail entry (P = 1) usually outnumber every other bin
    else:
        _note_empty(axes, "matched pairs")
    axes.set_xlim(0, 1)
    axes.set_xlabel("keep probability P = 1 - prod(1 - p_e)")
    axes.set_ylabel("matched pairs")
    axes.set_title("Keep probabilities of matched pairs")
    axes.grid(True, axis="y", alpha=0.3)
    return figure


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_count_decades(before: list[dict], after: list[dict]) -> Figure:
    """Share of all matches held by the entries of each count decade (1-9, 10-99, ...), before and after balancing:
    balancing moves weight from the high decades (the head) to the low ones (the tail)."""
    figure, axes = _figure()
    decades = max(len(before), len(after))
    labels = [f"{10 ** d:,}-{10 ** (d + 1) - 1:,}" for d in range(decades)]
    width = 0.4
    for offset, rows, style in ((-width / 2, before, BEFORE_STYLE), (width / 2, after, AFTER_STYLE)):
        shares = [r["matches_share"] for r in rows] + [0.0] * (decades - len(rows))
        axes.bar(np.arange(decades) + offset, shares, width=width, **style)
    if not decades:
        _note_empty(axes, "matched entries")
    axes.set_xticks(np.arange(decades), labels, rotation=20 if decades > 5 else 0, fontsize=8)
    axes.set_xlabel("entries whose count lies in")
    axes.set_ylabel("share of all matches")
    # The legend above the axes, under the title: inside, wherever it goes, a bar can be that tall (a small pool's
    # matches are nearly all in the first decade, a large one's in the high decades).
    axes.set_title("Matches held by entries of each count decade", pad=24)
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=8)
    figure.subplots_adjust(top=0.86)
    axes.grid(True, axis="y", alpha=0.3)
    return figure


def plot_entries_per_text(rows: list[dict]) -> Figure:
    """Matched pairs by how many entries their text matches (1, 2, ...): most texts match a few entries; a long
    right tail is captions that are lists of words."""
    figure, axes = _figure()
    entries = np.array([r["entries"] for r in rows], dtype=np.int64)
    pairs = np.array([r["pairs"] for r in rows], dtype=np.float64)
    if entries.size:
        axes.bar(entries, pairs, width=0.8, color=BEFORE_STYLE["color"])
        if pairs.max() / max(pairs.min(), 1.0) >= 100:  # a few pairs with many entries stay visible beside thousands
            axes.set_yscale("log")
    else:
        _note_empty(axes, "matched pairs")
    axes.set_xlabel("entries matched by the text")
    axes.set_ylabel("matched pairs")
    axes.set_title("Entries per matched text")
    axes.grid(True, axis="y", alpha=0.3)
    return figure


def plot_caption_lengths(labels: list[str], matched: list[int], curated: list[int]) -> Figure:
    """Caption lengths (characters) of matched and curated pairs, as shares of each set."""
    figure, axes = _figure()
    positions = np.arange(len(labels))
    width = 0.4
    for offset, counts, style in ((-width / 2, matched, BEFORE_STYLE), (width / 2, curated, AFTER_STYLE)):
        counts = np.asarray(counts, dtype=np.float64)
        shares = counts / counts.sum() if counts.sum() else counts
        axes.bar(positions + offset, shares, width=width, **style)
    if not np.asarray(matched).any():
        _note_empty(axes, "matched pairs")
    axes.set_xticks(positions, labels, fontsize=8)
    axes.set_xlabel("caption length (characters)")
    axes.set_ylabel("share of pairs")
    axes.set_title("Caption lengths")
    axes.legend(loc="upper right")
    axes.grid(True, axis="y", alpha=0.3)
    return figure


def plot_plan(rows: list[dict], t: int, auto_t: int, xlabel: str = "threshold t") -> Figure:
    """Expected curated pairs and tail share against t (log scale): where the curve flattens, a larger t adds
    little; the run's t and auto's marked."""
    figure, axes = _figure()
    figure.subplots_adjust(right=0.88)  # room for the tail share's axis
    ts = np.array([r["t"] for r in rows], dtype=np.float64)
    expected = np.array([r["expected_pairs"] or 0.0 for r in rows])
    if ts.size:
        axes.plot(ts, expected, marker="o", linewidth=1.4, color=AFTER_STYLE["color"], label="expected curated pairs")
    axes.axvline(t, color="black", linestyle="--", linewidth=1, label=f"this run: t = {t:,}")
    if auto_t != t:
        axes.axvline(auto_t, color="gray", linestyle=":", linewidth=1, label=f"auto: t = {auto_t:,}")
    axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("expected curated pairs")
    axes.set_title("Expected curated pairs and tail share by t")
    tail = axes.twinx()
    if ts.size:
        tail.plot(ts, [r["tail_share"] for r in rows], marker=".", linewidth=1, color=BEFORE_STYLE["color"],
                  label="tail share (right axis)")
    tail.set_ylim(0, 1.02)
    tail.set_ylabel("tail share of matches")
    lines = axes.get_legend_handles_labels()
    more = tail.get_legend_handles_labels()
    axes.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)
    axes.grid(True, which="major", alpha=0.3)
    return figure


# One sentence under each plot: what to look for in it.
LOOK_FOR = {
    "entry_counts.png": "Look for the head flattened at t (red) while the tail under t is untouched: a red curve on "
                        "top of the blue one means balancing removed nothing.",
    "cumulative_share.png": "Look for the red curve rising more slowly than the blue one: after balancing the largest "
                            "entries hold a smaller share of all matches.",
    "keep_probabilities.png": "Look at the bar at P = 1 (pairs holding a tail entry, always kept) against the rest: "
                              "if nearly every pair is there, t is too large to balance anything.",
    "count_decades.png": "Look for weight moving from the high decades (frequent entries) to the low ones: the tail "
                         "gains share after balancing.",
    "entries_per_text.png": "Look for most texts matching a few entries (MetaCLIP reports about 3.5 per matched "
                            "English text): a long right tail is captions that are lists of keywords.",
    "caption_lengths.png": "Look for a shift between matched and curated: balancing favours rare entries, which "
                           "often come with longer, more specific captions.",
    "plan.png": "Look for where the expected pairs flatten: a larger t than that adds few pairs and more head; the "
                "tail share at the chosen t should be near the target (MetaCLIP: about 6%).",
}


def report_figures(report: dict, vectors: dict) -> dict[str, Figure]:
    """The report's plots by file name, from its summary (report/sections.py) and the per-entry count vectors
    (before, after, and the t each entry was balanced at)."""
    before, after, t_by_entry = vectors["before"], vectors["after"], vectors["t_by_entry"]
    figures = {
        "entry_counts.png": plot_entry_counts(before, after, t_by_entry),
        "cumulative_share.png": plot_cumulative_share(before, after, t_by_entry),
        "keep_probabilities.png": plot_keep_probabilities(report["balancing"]["keep_probability_histogram"]["pairs"]),
        "count_decades.png": plot_count_decades(report["count_decades"]["before"], report["count_decades"]["after"]),
        "entries_per_text.png": plot_entries_per_text(report["matching"]["entries_per_matched_text"]),
    }
    if report["plan"]:
        figures["plan.png"] = plot_plan(report["plan"]["rows"], report["balancing"]["t"], report["plan"]["auto_t"],
                                        "English's threshold t (every other language's derived from it)"
                                        if report["plan"].get("t_is") else "threshold t")
    if report["caption_lengths"]:
        lengths = report["caption_lengths"]
        figures["caption_lengths.png"] = plot_caption_lengths(lengths["bins"], lengths["matched"], lengths["curated"])
    return figures
