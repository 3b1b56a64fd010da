"""``python -m experiments report``: everything that has been run, as ``results/report.md``
and a multi-page ``results/report.pdf`` (matplotlib's PDF backend).

Per experiment (in the registry's order, every run found under ``results/<name>/``):
the question, the mode and the command that reruns it, the setup (architecture,
parameter count, activation, lr, batch size, epochs, optimiser, initialiser, seed), a
paragraph reading the result generated from its own ``metrics.json`` (the study's
``describe``), its tables and its figures.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import List, Tuple

import numpy as np

from experiments.page_pdf import table_text
from experiments.registry import MODULES, STUDIES

SETUP_KEYS = ("architecture", "parameters", "activation", "optimizer", "lr", "batch_size", "epochs", "initializer",
              "seed", "seeds", "dataset", "n_train", "n_val", "n_test")
CONFIG_KEYS = {"hidden": "hidden", "archs": "architecture", "models": "models", "activation": "activation",
               "optimizer": "optimizer", "lr": "lr", "course_lr": "lr (course)", "best_lr": "lr (best)",
               "batch_size": "batch_size", "epochs": "epochs", "course_epochs": "epochs (course)",
               "best_epochs": "epochs (best)", "init": "initializer", "seed": "seed", "dataset": "dataset",
               "train_size": "train_size", "val_size": "val_size"}
MAX_TABLE_ROWS = 24


# -- paragraphs for the studies that predate the runner ---------------------------------------
def _describe_finite_differences(m: dict, cfg: dict) -> str:
    parts = [f"{d}: smallest error {m[d]['min_error']:.1e} at N = {m[d]['N']:,} (ε = {m[d]['eps']:.0e})"
             for d in ("float64", "float32") if d in m]
    return (f"After brief training ({100 * m['test_accuracy_after_training']:.2f}% test accuracy), central differences "
            f"of the loss with respect to {m['p']} weights of W2 match back-propagation best at an intermediate step: "
            + "; ".join(parts) + ". Larger steps are dominated by truncation (∝ ε²), smaller ones by rounding (∝ u/ε), "
            "and float32's larger unit roundoff moves the best step up and the floor of the V higher.")


def _describe_mlp_dropout_adam(m: dict, cfg: dict) -> str:
    return (f"The {m['parameters']:,}-parameter MLP with dropout {cfg.get('dropout')} and Adam reaches "
            f"{100 * m['test_accuracy']:.2f}% test accuracy after {m['epochs']} epochs on {m['n_train']:,} training "
            f"images ({m['total_seconds']:.0f} s, {m['median_epoch_seconds']:.1f} s per epoch); the accuracy reported "
            f"is the last epoch's, not the best seen ({100 * m['best_test_accuracy_seen']:.2f}%).")


def _describe_numpy_cnn(m: dict, cfg: dict) -> str:
    parts = [f"{k}: {v['description']} ({v['parameters']:,} parameters) {100 * v['test_accuracy']:.2f}% test accuracy "
             f"after {v['epochs']} epochs in {v['seconds']:.0f} s" for k, v in m.items() if isinstance(v, dict)]
    return "The numpy CNNs, last epoch's test accuracy: " + "; ".join(parts) + "."


def _describe_torch_baselines(m: dict, cfg: dict) -> str:
    parts = [f"{r['description']} ({r['parameters']:,} parameters, {r['optimizer']} lr {r['lr']:g}): "
             f"{100 * r['test_accuracy']:.2f}% after {r['epochs']} epochs in {r['seconds']:.0f} s"
             for r in m["results"]]
    return "The torch baselines, last epoch's test accuracy: " + "; ".join(parts) + "."


LEGACY = {"finite_differences": _describe_finite_differences, "mlp_dropout_adam": _describe_mlp_dropout_adam,
          "numpy_cnn": _describe_numpy_cnn, "torch_baselines": _describe_torch_baselines}


# -- collecting --------------------------------------------------------------------------------
def find_runs(root: Path) -> List[Tuple[str, Path, dict]]:
    """``(study, folder, manifest)`` for every manifest under ``root``, in registry order."""
    found = []
    for name in STUDIES:
        base = root / name
        if not base.is_dir():
            continue
        manifests = sorted(base.glob("manifest.json")) + sorted(base.glob("*/manifest.json"))
        for path in manifests:
            try:
                found.append((name, path.parent, json.loads(path.read_text())))
            except (OSError, json.JSONDecodeError):
                continue
    return found


def setup_lines(metrics: dict, config: dict) -> List[Tuple[str, str]]:
    """The setup as ``(key, value)`` pairs: the study's own ``setup`` block, else its config."""
    out = []
    setup = metrics.get("setup") if isinstance(metrics, dict) else None
    if setup:
        for k in SETUP_KEYS:
            if k in setup and setup[k] is not None:
                out.append((k, _fmt(setup[k])))
        for k, v in setup.items():
            if k not in SETUP_KEYS and v is not None:
                out.append((k, _fmt(v)))
        return out
    for k, label in CONFIG_KEYS.items():
        if k in config and config[k] not in (None, "", 0) or k in ("seed",) and k in config:
            out.append((label, _fmt(config[k])))
    if isinstance(metrics, dict) and "parameters" in metrics:
        out.insert(1, ("parameters", _fmt(metrics["parameters"])))
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10000:
        return f"{v:,}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return str(v)


def paragraph(name: str, metrics: dict, config: dict) -> str:
    """The study's reading of its own numbers (its ``describe``), or why there is none."""
    import importlib

    try:
        module = importlib.import_module(MODULES[name])
        describe = getattr(module, "describe", None) or LEGACY.get(name)
        if describe is None:
            return "(this study writes no summary paragraph)"
        return describe(metrics, config)
    except Exception as err:  # a report must still build from partial results
        return f"(no summary: {type(err).__name__}: {err})"


def question_of(name: str) -> str:
    import importlib

    from experiments.runner import question

    try:
        return question(importlib.import_module(MODULES[name]))
    except (ImportError, KeyError) as err:
        return f"(the study cannot be imported: {err})"


def read_table(path: Path, limit: int = MAX_TABLE_ROWS) -> Tuple[str, int]:
    """A Markdown table, cut to ``limit`` rows; returns ``(text, rows in total)``."""
    lines = path.read_text().strip().splitlines()
    body = lines[2:]
    if len(body) <= limit:
        return "\n".join(lines), len(body)
    return "\n".join(lines[:2] + body[:limit]), len(body)


# -- writing -----------------------------------------------------------------------------------
def build_report(root="results") -> Tuple[Path, Path]:
    """Write ``<root>/report.md`` and ``<root>/report.pdf``; returns their paths."""
    root = Path(root)
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(f"report: no experiment results (manifest.json) under {root}; run "
                                "`python -m experiments run NAME` first")
    sections = []
    for name, folder, manifest in runs:
        metrics_path = folder / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        config = manifest.get("config", {})
        tables = [p for p in sorted(folder.glob("*.md"))]
        figures = sorted(folder.glob("*.png"))
        sections.append({"name": name, "folder": folder, "manifest": manifest, "metrics": metrics,
                         "question": question_of(name), "setup": setup_lines(metrics, config),
                         "paragraph": paragraph(name, metrics, config), "tables": tables, "figures": figures})
    md = _write_markdown(root, sections)
    pdf = _write_pdf(root, sections)
    return md, pdf


def _header(s: dict) -> str:
    m = s["manifest"]
    where = s["folder"].name if s["folder"].name != s["name"] else ""
    return f"{s['name']}{f' ({where})' if where else ''} — {m.get('mode', '?')} mode"


def _write_markdown(root: Path, sections) -> Path:
    lines = ["# Experiment report", ""]
    run_all = root / "run_all.md"
    if run_all.exists():
        lines += ["Last `python -m experiments run all`:", "", run_all.read_text().strip(), ""]
    lines += ["Contents:", ""] + [f"{i}. {_header(s)}" for i, s in enumerate(sections, 1)] + [""]
    for i, s in enumerate(sections, 1):
        m = s["manifest"]
        lines += [f"## {i}. {_header(s)}", "", f"**Question.** {s['question']}", ""]
        if m.get("mode_note"):
            lines += [f"*{m['mode_note']}*", ""]
        lines += [f"Wall time {m.get('wall_seconds', 0):.1f} s, finished {m.get('finished', '?')}, commit "
                  f"`{m.get('git_commit')}`. Rerun: `{m.get('rerun')}`", ""]
        lines += ["**Setup.** " + "; ".join(f"{k}: {v}" for k, v in s["setup"]), ""]
        lines += [f"**Result.** {s['paragraph']}", ""]
        for t in s["tables"]:
            text, n = read_table(t)
            rel = t.relative_to(root).with_suffix(".csv")
            lines += [f"*{t.stem}* ({n} rows{'' if n <= MAX_TABLE_ROWS else f', first {MAX_TABLE_ROWS} shown'}; "
                      f"[CSV]({rel.as_posix()}))", "", text, ""]
        for f in s["figures"]:
            rel = f.relative_to(root).as_posix()
            lines += [f"![{f.stem}]({rel})", ""]
    path = root / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


class _TextPages:
    """Lines of text laid out on A4 pages of a ``PdfPages``, a new page when one is full."""

    def __init__(self, pdf, plt):
        self.pdf, self.plt = pdf, plt
        self.fig, self.y = None, 0.0

    def _new(self):
        self.flush()
        self.fig = self.plt.figure(figsize=(8.27, 11.69))
        self.y = 0.96

    def add(self, text: str, size: float = 9, family: str = "sans-serif", weight: str = "normal", width: int = 105,
            gap: float = 0.004):
        wrapped = []
        for para in text.splitlines() or [""]:
            wrapped += textwrap.wrap(para, width) if family != "monospace" else [para[:width]]
            if not para:
                wrapped.append("")
        step = size * 1.2 / (11.69 * 72)        # one line, as a fraction of the page height
        while wrapped:                            # one text object per page-sized chunk (fast)
            if self.fig is None or self.y - step < 0.03:
                self._new()
            fit = max(1, int((self.y - 0.03) / step))
            chunk, wrapped = wrapped[:fit], wrapped[fit:]
            self.fig.text(0.05, self.y, "\n".join(chunk), fontsize=size, family=family, weight=weight, va="top",
                          linespacing=1.0)
            self.y -= step * len(chunk)
        self.y -= gap

    def flush(self):
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            self.plt.close(self.fig)
            self.fig = None


def _write_pdf(root: Path, sections) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    path = root / "report.pdf"
    with PdfPages(path) as pdf:
        pages = _TextPages(pdf, plt)
        pages.add("Experiment report", size=18, weight="bold", gap=0.02)
        run_all = root / "run_all.md"
        if run_all.exists():
            pages.add("Last `run all`:", size=10, weight="bold")
            pages.add(run_all.read_text(), size=7, family="monospace", width=120, gap=0.02)
        for i, s in enumerate(sections, 1):
            pages.add(f"{i}. {_header(s)}", size=10)
        for i, s in enumerate(sections, 1):
            pages.flush()
            m = s["manifest"]
            pages.add(f"{i}. {_header(s)}", size=14, weight="bold", gap=0.01)
            pages.add("Question. " + s["question"], size=10, gap=0.01)
            if m.get("mode_note"):
                pages.add(m["mode_note"], size=8, gap=0.008)
            pages.add(f"Wall time {m.get('wall_seconds', 0):.1f} s, finished {m.get('finished', '?')}, commit "
                      f"{m.get('git_commit')}", size=8)
            pages.add("Rerun: " + str(m.get("rerun")), size=7, width=150, gap=0.01)
            pages.add("Setup", size=10, weight="bold")
            for k, v in s["setup"]:
                pages.add(f"{k}: {v}", size=8.5, gap=0)
            pages.add("", size=4)
            pages.add("Result", size=10, weight="bold")
            pages.add(s["paragraph"], size=9, gap=0.012)
            for t in s["tables"]:
                text, n = read_table(t)
                pages.add(f"{t.stem} ({n} rows{'' if n <= MAX_TABLE_ROWS else f', first {MAX_TABLE_ROWS}'})",
                          size=8.5, weight="bold")
                pages.add(table_text(text.splitlines()), size=6, family="monospace", width=150, gap=0.01)
            pages.flush()
            for f in s["figures"]:
                image = mpimg.imread(f)
                if image.dtype != np.uint8:          # RGB(A) floats → RGB bytes: a quarter of the data
                    image = (np.clip(image[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8)
                fig = plt.figure(figsize=(11.69, 8.27))
                ax = fig.add_axes((0.03, 0.06, 0.94, 0.86))
                ax.imshow(image, interpolation="none")
                ax.axis("off")
                fig.text(0.5, 0.96, f"{i}. {s['name']}: {f.name}", ha="center", fontsize=11)
                pdf.savefig(fig)
                plt.close(fig)
        pages.flush()
    return path
