"""The numpy engine against PyTorch: ``tinygrad-mnist bench`` / ``python -m benchmarks``.

Run (time on an otherwise idle machine: other heavy processes skew both sides)::

    python -m benchmarks --json results/bench/bench.json
    python -m benchmarks --profile --models course-cnn --batch-sizes 64
    python -m benchmarks --scaling
    python -m benchmarks --quick --data synthetic        # smoke run, seconds
    python -m benchmarks --compare OLD.json NEW.json     # ratio change per record
    python -m benchmarks --time-to-accuracy              # seconds to 99.0% / 99.5% (benchmarks.time_to_accuracy)

Method, per model, batch size and thread count:

1. Both sides are built from one description (``benchmarks.models``) and start from the
   same weights; the first layer computes no input gradient on either side.
2. Both get the same thread count (threadpoolctl for numpy's BLAS, ``torch.set_num_threads``)
   and the same batches in the same order from one ``DataLoader`` (``set_epoch``).
3. Warm-up (``--warmup-batches`` steps per side, not timed), then ``--epochs`` measured
   epochs per side, interleaved numpy, torch, numpy, torch, ..., each after an untimed
   pause (``--settle``, 0.3 s) in which the other side's worker threads stop spinning.
   R = numpy s / torch s is computed for each pair; the record holds the medians and
   the min/max.
4. GFLOP/s = GEMM flops of one epoch (``BenchModel.gemm_flops_per_sample``) / median
   epoch seconds, and its share of the float32 GEMM throughput of this machine measured
   in the same run on the same threads (``machine.gemm_gflops``).
5. Test accuracy of both sides after the measured epochs; peak resident memory of each
   side in its own child process (``benchmarks.memory``).
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tinygrad_mnist.cli.common import DefaultsFormatter
from tinygrad_mnist.data import DataLoader
from tinygrad_mnist.presets import ALIASES, PRESETS

from . import time_to_accuracy
from .machine import describe_machine, gemm_gflops, thread_limit
from .models import MODELS, load_data, model_by_name

#: The keys every JSON record has (the issue's list); more keys follow them.
RECORD_KEYS = ("model", "batch_size", "threads", "numpy_epoch_s", "torch_epoch_s", "ratio", "gflops",
               "gemm_peak_gflops", "numpy_peak_rss_mb", "torch_peak_rss_mb", "numpy_accuracy",
               "torch_accuracy", "machine")


@dataclass
class BenchConfig:
    """What one ``bench`` run measures; each field is a command-line flag."""

    models: List[str] = field(default_factory=lambda: list(MODELS))
    batch_sizes: List[int] = field(default_factory=lambda: [64, 256])
    threads: List[int] = field(default_factory=lambda: [2])
    epochs: int = 3             # measured epochs per side (interleaved)
    warmup_batches: int = 30    # untimed steps per side before the first measured epoch
    settle_s: float = 0.3       # untimed pause before each measured epoch (Side.timed_epoch)
    data: str = "mnist"         # or "synthetic"
    data_dir: Optional[str] = None
    train_size: int = 0         # 0: all 60,000 training images
    test_size: int = 0          # 0: all 10,000 test images
    lr: float = 0.05
    momentum: float = 0.9
    seed: int = 0
    gemm_n: int = 1024          # size of the square GEMM that measures the peak
    rss_batches: int = 200      # training steps of each memory child (0: one epoch)
    memory: bool = True
    profile: bool = False
    profile_steps: int = 30
    profile_copy_mib: int = 0   # arrays of the out-of-cache copy bandwidth (0: 2× the last-level cache)
    scaling: bool = False
    scaling_size: int = 10240   # training images per scaling point
    out: str = "results/bench"  # scaling plots and tables go here
    json: Optional[str] = None
    quick: bool = False
    peers: bool = False         # also time the other numpy autodiff libraries (benchmarks.peers)
    peer_epochs: int = 0        # measured epochs per peer (0: --epochs)

    def apply_quick(self) -> "BenchConfig":
        """Seconds instead of minutes: tiny data, short warm-up, small GEMM, short children."""
        self.train_size = min(self.train_size or 1024, 1024)
        self.test_size = min(self.test_size or 512, 512)
        self.warmup_batches, self.gemm_n, self.rss_batches, self.settle_s = 2, 256, 3, 0.0
        self.profile_steps, self.scaling_size, self.profile_copy_mib = 3, 512, 16
        return self


def _stats(values: Sequence[float]) -> Dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(bench_model, batch_size: int, threads: int, train, test, cfg: BenchConfig,
            gemm_peak: float, machine: dict, log=print) -> dict:
    """One record: interleaved epochs of both sides for one model, batch size and thread count."""
    from .steps import check_same_start, make_sides

    sides = make_sides(bench_model, cfg.seed, cfg.lr, cfg.momentum)
    peers = _peer_bench(bench_model, sides["numpy"].model, cfg)
    loader = DataLoader(train, batch_size, shuffle=True, seed=cfg.seed, flatten=bench_model.flatten)
    start_diff = check_same_start(sides, loader)
    for side in sides.values():  # warm-up: allocator, thread pools, caches
        side.epoch(loader, 0, cfg.warmup_batches)
    if peers:
        peers.warm_up(loader, cfg.warmup_batches)
    times: Dict[str, List[float]] = {"numpy": [], "torch": []}
    losses: Dict[str, List[float]] = {"numpy": [], "torch": []}
    for e in range(cfg.epochs):
        for name, side in sides.items():
            seconds, loss = side.timed_epoch(loader, e + 1, cfg.settle_s)
            times[name].append(seconds)
            losses[name].append(loss)
        peer_log = peers.timed_epoch(loader, e + 1, cfg.settle_s) if peers else ""
        log(f"    epoch {e + 1}: numpy {times['numpy'][-1]:7.3f} s (loss {losses['numpy'][-1]:.4f})   "
            f"torch {times['torch'][-1]:7.3f} s (loss {losses['torch'][-1]:.4f}){peer_log}", flush=True)
    ratios = [a / b for a, b in zip(times["numpy"], times["torch"], strict=True)]
    acc = {name: side.accuracy(test, bench_model.flatten, batch_size) for name, side in sides.items()}
    n_st, t_st, r_st = _stats(times["numpy"]), _stats(times["torch"]), _stats(ratios)
    flops_epoch = bench_model.gemm_flops_per_sample() * len(train)
    gflops = flops_epoch / n_st["median"] / 1e9
    record = {
        "model": bench_model.name, "batch_size": batch_size, "threads": threads,
        "numpy_epoch_s": n_st["median"], "torch_epoch_s": t_st["median"], "ratio": r_st["median"],
        "gflops": gflops, "gemm_peak_gflops": gemm_peak,
        "numpy_peak_rss_mb": None, "torch_peak_rss_mb": None,
        "numpy_accuracy": acc["numpy"], "torch_accuracy": acc["torch"],
        "machine": machine,
        # the detail behind the headline numbers
        "numpy_epoch_s_min": n_st["min"], "numpy_epoch_s_max": n_st["max"],
        "torch_epoch_s_min": t_st["min"], "torch_epoch_s_max": t_st["max"],
        "ratio_min": r_st["min"], "ratio_max": r_st["max"], "ratios": ratios,
        "numpy_epochs_s": times["numpy"], "torch_epochs_s": times["torch"],
        "numpy_train_loss": losses["numpy"], "torch_train_loss": losses["torch"],
        "numpy_samples_per_s": len(train) / n_st["median"], "torch_samples_per_s": len(train) / t_st["median"],
        "torch_gflops": flops_epoch / t_st["median"] / 1e9, "gemm_share": gflops / gemm_peak,
        "gemm_gflop_per_epoch": flops_epoch / 1e9, "activation": bench_model.activation,
        "train_samples": len(train), "test_samples": len(test), "batches_per_epoch": len(loader),
        "epochs": cfg.epochs, "warmup_batches": cfg.warmup_batches, "data": cfg.data,
        "lr": cfg.lr, "momentum": cfg.momentum, "seed": cfg.seed, "start_logit_max_diff": start_diff,
    }
    if peers:
        record.update(peers.record(times["numpy"], test, batch_size))
    if cfg.profile:
        from .profile import profile_model

        record["profile"] = profile_model(bench_model, sides, loader, cfg.profile_steps, log=log,
                                          gemm_peak=gemm_peak, copy_bytes=cfg.profile_copy_mib * 2**20)
    return record


def _peer_bench(bench_model, numpy_model, cfg: BenchConfig):
    """The peers of one record (``--peers``), holding copies of the untrained numpy weights."""
    if not cfg.peers:
        return None
    from .peers import PeerBench

    return PeerBench(bench_model, numpy_model, cfg.lr, cfg.momentum, min(cfg.peer_epochs or cfg.epochs, cfg.epochs))


def add_memory(record: dict, cfg: BenchConfig) -> None:
    """Fill ``numpy_peak_rss_mb`` / ``torch_peak_rss_mb`` from one child process per side."""
    from .memory import peak_rss_mb

    for side in ("numpy", "torch"):
        res = peak_rss_mb(side, record["model"], record["batch_size"], record["threads"], cfg.rss_batches,
                          cfg.data, cfg.data_dir, cfg.train_size, cfg.test_size, cfg.seed, cfg.lr, cfg.momentum)
        record[f"{side}_peak_rss_mb"] = res["peak_rss_mb"]
    record["rss_batches"] = cfg.rss_batches


def format_table(records: List[dict]) -> str:
    """The headline table (Markdown)."""
    head = ("| model | batch | threads | numpy s/epoch | torch s/epoch | R (min–max) | numpy samples/s "
            "| GFLOP/s (share of GEMM peak) | peak RSS numpy / torch MB | accuracy numpy / torch |")
    from .peers import peer_table_cells, peer_table_head

    extra = peer_table_head(records)
    lines = [head + extra, "|" + "---|" * (10 + extra.count("|"))]
    for r in records:
        rss = ("–" if r["numpy_peak_rss_mb"] is None
               else f"{r['numpy_peak_rss_mb']:.0f} / {r['torch_peak_rss_mb']:.0f}")
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['threads']} | {r['numpy_epoch_s']:.3f} "
            f"| {r['torch_epoch_s']:.3f} | {r['ratio']:.2f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}) "
            f"| {r['numpy_samples_per_s']:,.0f} | {r['gflops']:.1f} ({100 * r['gemm_share']:.0f}% of "
            f"{r['gemm_peak_gflops']:.0f}) | {rss} | {100 * r['numpy_accuracy']:.2f}% / "
            f"{100 * r['torch_accuracy']:.2f}% |" + peer_table_cells(r, r["epochs"]))
    return "\n".join(lines)


#: The throughput targets at 2 threads, re-aimed at what numpy can reach (docs/performance.md):
#: the largest R per (model, batch size), and no numpy side above TARGET_NUMPY_RSS_MB.
TARGET_RATIO = {("classic-mlp", 64): 0.6, ("classic-mlp", 256): 0.6,
                ("wide-mlp", 64): 1.0, ("wide-mlp", 256): 1.0,
                ("course-cnn", 64): 1.15, ("course-cnn", 256): 1.15}
TARGET_NUMPY_RSS_MB = 400.0


def format_targets(records: List[dict]) -> str:
    """The targets each record meets or misses, with the measured figure (Markdown)."""
    lines = ["| model | batch | threads | target | measured | |", "|---|---|---|---|---|---|"]
    for r in records:
        key = (r["model"], r["batch_size"])
        checks = []
        if key in TARGET_RATIO:
            checks.append((f"R ≤ {TARGET_RATIO[key]:.2f}", f"R = {r['ratio']:.2f}", r["ratio"] <= TARGET_RATIO[key]))
        if r.get("numpy_peak_rss_mb") is not None:
            checks.append((f"numpy peak RSS ≤ {TARGET_NUMPY_RSS_MB:.0f} MB", f"{r['numpy_peak_rss_mb']:.0f} MB",
                           r["numpy_peak_rss_mb"] <= TARGET_NUMPY_RSS_MB))
        for target, measured, ok in checks:
            lines.append(f"| {r['model']} | {r['batch_size']} | {r['threads']} | {target} | {measured} "
                         f"| {'met' if ok else 'missed'} |")
    from .peers import peer_target_lines

    return "\n".join(lines + peer_target_lines(records))


def compare(old_path, new_path) -> str:
    """The ratio change per record between two ``--json`` files (matched on model, batch, threads)."""
    def load(path):
        with open(path) as f:
            recs = json.load(f)
        if not isinstance(recs, list):
            raise ValueError(f"{path}: expected a list of benchmark records")
        # records written before the one registry carry the old names (mlp-784-64-10, ...)
        return {(ALIASES.get(r["model"], r["model"]), r["batch_size"], r["threads"]): r for r in recs}

    old, new = load(old_path), load(new_path)
    lines = [f"R = numpy / torch seconds per epoch; old: {old_path}, new: {new_path}",
             "| model | batch | threads | old R | new R | change | old numpy s | new numpy s |",
             "|---|---|---|---|---|---|---|---|"]
    for key in list(old) + [k for k in new if k not in old]:
        o, n = old.get(key), new.get(key)
        if o is None or n is None:
            ro = "–" if o is None else f"{o['ratio']:.3f}"
            rn = "–" if n is None else f"{n['ratio']:.3f}"
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {ro} | {rn} "
                         f"| only in {'new' if o is None else 'old'} | | |")
            continue
        change = 100 * (n["ratio"] / o["ratio"] - 1)
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {o['ratio']:.3f} | {n['ratio']:.3f} | {change:+.1f}% "
                     f"| {o['numpy_epoch_s']:.3f} | {n['numpy_epoch_s']:.3f} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``bench`` options, for ``python -m benchmarks`` and ``tinygrad-mnist bench``."""
    d = BenchConfig()
    parser.add_argument("--models", nargs="+", default=d.models, metavar="MODEL",
                        help=f"any of {', '.join(PRESETS)} (tinygrad-mnist models lists them), "
                             "or mlp-784-<widths>-10 (ReLU)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=d.batch_sizes, metavar="B",
                        help="training batch sizes, the same on both sides")
    parser.add_argument("--threads", nargs="+", type=int, default=d.threads, metavar="N",
                        help="thread counts, applied to both sides")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="measured epochs per side")
    parser.add_argument("--warmup-batches", type=int, default=d.warmup_batches,
                        help="untimed steps per side before the first measured epoch")
    parser.add_argument("--settle", dest="settle_s", type=float, default=d.settle_s, metavar="SECONDS",
                        help="untimed pause before each measured epoch, so the other side's "
                             "worker threads stop spinning (0 with --quick)")
    parser.add_argument("--data", choices=["mnist", "synthetic"], default=d.data,
                        help="MNIST, or learnable synthetic images that need no download")
    parser.add_argument("--data-dir", default=None, help="MNIST IDX directory (default: $TINYGRAD_MNIST_DATA)")
    parser.add_argument("--train-size", type=int, default=d.train_size, help="training images to use (0: all)")
    parser.add_argument("--test-size", type=int, default=d.test_size, help="test images to use (0: all)")
    parser.add_argument("--lr", type=float, default=d.lr, help="SGD learning rate (mean loss), both sides")
    parser.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum, both sides")
    parser.add_argument("--seed", type=int, default=d.seed, help="seeds the weights (copied to torch) and batches")
    parser.add_argument("--gemm-n", type=int, default=d.gemm_n, help="size of the peak-measuring GEMM")
    parser.add_argument("--rss-batches", type=int, default=d.rss_batches,
                        help="training steps of each memory child (0: a whole epoch)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory children")
    parser.add_argument("--profile", action="store_true", help="per-layer ms and numpy's time split")
    parser.add_argument("--profile-steps", type=int, default=d.profile_steps,
                        help="training steps timed per layer by --profile")
    parser.add_argument("--profile-copy-mib", type=int, default=d.profile_copy_mib,
                        help="array size of --profile's out-of-cache copy bandwidth (0: twice the last-level cache)")
    parser.add_argument("--scaling", action="store_true", help="width and batch-size sweeps with plots")
    parser.add_argument("--scaling-size", type=int, default=d.scaling_size, help="training images per point")
    parser.add_argument("--out", default=d.out, help="directory for scaling plots and tables")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the records here (default: not written)")
    parser.add_argument("--quick", action="store_true", help="a smoke run in seconds")
    parser.add_argument("--peers", action="store_true",
                        help="also time autograd and MyGrad, interleaved, from the same weights (the peers extra)")
    parser.add_argument("--peer-epochs", type=int, default=d.peer_epochs, metavar="N",
                        help="measured epochs per peer, at most --epochs (0: --epochs)")
    parser.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"), default=None,
                        help="print the ratio change per record between two --json files and stop (default: measure)")
    parser.add_argument("--time-to-accuracy", action="store_true",
                        help="seconds of training to each --threshold per seed (benchmarks.time_to_accuracy)")
    return time_to_accuracy.add_arguments(parser, standalone=False)


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    names = {f for f in BenchConfig.__dataclass_fields__}
    cfg = BenchConfig(**{k: v for k, v in vars(args).items() if k in names})
    for m in cfg.models:
        model_by_name(m)  # fail before any timing on an unknown name
    if cfg.epochs < 1 or min(cfg.batch_sizes) < 1 or min(cfg.threads) < 1:
        raise ValueError("benchmarks: epochs, batch sizes and threads must be positive")
    if cfg.peer_epochs < 0:
        raise ValueError(f"benchmarks: --peer-epochs must be 0 (as --epochs) or positive, got {cfg.peer_epochs}")
    return cfg.apply_quick() if cfg.quick else cfg


def run(args: argparse.Namespace, log=print) -> int:
    """Run what ``args`` (from :func:`add_arguments`) asks for; the exit status."""
    if getattr(args, "compare", None):
        log(compare(*args.compare))
        return 0
    if getattr(args, "time_to_accuracy", False):
        return time_to_accuracy.run_from_args(args, log)
    cfg = config_from_args(args)
    records = run_config(cfg, log=log)
    if cfg.scaling:
        from .scaling import run_scaling

        run_scaling(cfg, log=log)
    return 0 if records or cfg.scaling else 1


def run_config(cfg: BenchConfig, log=print) -> List[dict]:
    """All records of ``cfg`` (and the JSON file when ``cfg.json``)."""
    import torch  # noqa: F401  (loaded before the thread limits, so they reach it)

    train, test = load_data(cfg.data, cfg.data_dir, cfg.train_size, cfg.test_size, cfg.seed)
    machine = describe_machine()
    machine["config"] = {k: v for k, v in asdict(cfg).items() if k not in ("json",)}
    log(f"{machine['cpu']}, {machine['usable_cpus']} usable CPUs, load {machine['load_average']}; "
        f"numpy {machine['numpy']} ({machine['blas']}), torch {machine['torch']}")
    log(f"data: {cfg.data}, {len(train):,} training / {len(test):,} test images; "
        f"{cfg.epochs} measured epochs per side after {cfg.warmup_batches} warm-up steps")
    records = []
    for threads in cfg.threads:
        with thread_limit(threads):
            # the peak: the best GEMM throughput seen in this run on these threads, measured
            # before every model (a busy neighbour can only lower a measurement)
            peak = max(gemm_gflops(cfg.gemm_n) for _ in range(2))
            log(f"\n{threads} thread(s): float32 GEMM {cfg.gemm_n}³ at {peak:.1f} GFLOP/s")
            block = []
            for name in cfg.models:
                for batch in cfg.batch_sizes:
                    peak = max(peak, gemm_gflops(cfg.gemm_n))
                    log(f"  {name}, batch {batch}, {threads} thread(s)")
                    rec = measure(model_by_name(name), batch, threads, train, test, cfg, peak, machine, log)
                    block.append(rec)
                    log(f"    R = {rec['ratio']:.3f} ({rec['ratio_min']:.3f}–{rec['ratio_max']:.3f}), "
                        f"{rec['gflops']:.1f} GFLOP/s")
            peak = max(peak, gemm_gflops(cfg.gemm_n))
            for rec in block:
                rec["gemm_peak_gflops"], rec["gemm_share"] = peak, rec["gflops"] / peak
            log(f"  float32 GEMM peak of this run on {threads} thread(s): {peak:.1f} GFLOP/s")
            records += block
        if cfg.memory:
            for rec in records:
                if rec["threads"] == threads:
                    add_memory(rec, cfg)
    log("\n" + format_table(records))
    log("\n" + format_targets(records))
    if cfg.peers:
        from .peers import peer_note_lines

        for line in peer_note_lines(records):
            log(line)
    if cfg.json:
        path = Path(cfg.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, indent=1, default=str))
        log(f"wrote {path}")
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0],
                                     formatter_class=DefaultsFormatter)
    return run(add_arguments(parser).parse_args(argv))
