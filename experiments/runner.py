"""Run registered studies: parse their flags, apply quick/smoke mode, write the manifest.

Used by ``python -m experiments`` (see ``experiments/__main__.py``); the studies are
listed in :mod:`experiments.registry`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
import time
import traceback
from dataclasses import MISSING, asdict, fields, is_dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from experiments.manifest import mode_note, stamp_png, write_manifest
from experiments.registry import ALIASES, MODULES, STUDIES
from tinygrad_mnist.nn.conventions import resolve_alias

MODES = ("full", "quick", "smoke")


class UsageError(ValueError):
    """A bad experiment name or flag; the message lists the valid ones."""


def study_names() -> Tuple[str, ...]:
    return STUDIES


def canonical_study(name: str, warn: bool = True) -> str:
    """The registry name of a study: an old name of :data:`~experiments.registry.ALIASES`
    is mapped, with a note on stderr when ``warn``; any other name is returned as it is."""
    return resolve_alias(name, ALIASES, "experiment", warn)


def load_study(name: str) -> ModuleType:
    """The module of a registered study (an old name mapped with a note); an unknown name
    lists the valid ones."""
    name = canonical_study(name)
    if name not in STUDIES:
        raise UsageError(f"unknown experiment {name!r}; valid experiments: {', '.join(STUDIES)} (or 'all')")
    return importlib.import_module(MODULES[name])


def study_name(module: ModuleType) -> str:
    return getattr(module, "NAME", module.__name__.rsplit(".", 1)[-1])


def question(module: ModuleType) -> str:
    """The study's question: ``QUESTION`` or the first line of its docstring."""
    return getattr(module, "QUESTION", None) or (module.__doc__ or "").strip().splitlines()[0]


def output_path(module: ModuleType, cfg) -> Path:
    """``<out>/<NAME>`` or ``<out>/<NAME>/<run>`` when the config has a ``run`` field."""
    path = Path(cfg.out) / study_name(module)
    return path / cfg.run if hasattr(cfg, "run") else path


def _default(f):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _comments(cls) -> Dict[str, str]:
    """``{field: comment}`` from the ``name: type = value  # comment`` lines of ``cls``'s source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out: Dict[str, str] = {}
    for line in source.splitlines():
        m = re.match(r"^\s+(\w+)\s*:[^#=]*=[^#]*#\s*(.+?)\s*$", line)
        if m:
            out.setdefault(m.group(1), m.group(2))
    return out


def _docstring_entries(cls) -> Dict[str, str]:
    """``{field: first line}`` from the numpydoc entries (``name : type`` then an indented
    description) of ``cls``'s docstring; ``a, b : int`` gives both names the line."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    lines = doc.splitlines()
    out: Dict[str, str] = {}
    for i, line in enumerate(lines):
        m = re.match(r"^([\w, ]+?) : ", line)
        if m and i + 1 < len(lines) and lines[i + 1].startswith(" "):
            for name in m.group(1).split(","):
                out.setdefault(name.strip(), lines[i + 1].strip())
    return out


def field_help(config_cls) -> Dict[str, str]:
    """One line saying what each field of ``config_cls`` means.

    Looked for in order: the ``# comment`` after the field in the class (or a base class),
    the shared meanings of :data:`experiments.common.FIELD_HELP` (``train_size``: "training
    images to use (0: all)", ...), the numpydoc entry of the class docstring; else the
    field's name in words.
    """
    from experiments.common import FIELD_HELP, FIELD_PREFIXES

    comments: Dict[str, str] = {}
    entries: Dict[str, str] = {}
    for cls in config_cls.__mro__:
        if cls is object:
            continue
        for k, v in _comments(cls).items():
            comments.setdefault(k, v)
        for k, v in _docstring_entries(cls).items():
            entries.setdefault(k, v)
    def shared(name: str) -> Optional[str]:
        if name in FIELD_HELP:
            return FIELD_HELP[name]
        prefix, _, rest = name.partition("_")
        if prefix in FIELD_PREFIXES and (rest in FIELD_HELP or rest.rstrip("s") in FIELD_HELP):
            return f"{FIELD_PREFIXES[prefix]}: {FIELD_HELP.get(rest) or FIELD_HELP[rest.rstrip('s')]}"
        return None

    return {f.name: comments.get(f.name) or shared(f.name) or entries.get(f.name)
            or f.name.replace("_", " ") for f in fields(config_cls)}


def _shown(default) -> str:
    if default is None:
        return "none"
    if isinstance(default, (list, tuple)):
        return " ".join(map(str, default)) or "none"
    return str(default)


def flag_parser(config_cls, prog: str) -> argparse.ArgumentParser:
    """One ``--flag`` per config field, its help the field's meaning (:func:`field_help`) and
    its default; only the flags given land in the namespace."""
    parser = argparse.ArgumentParser(prog=prog, add_help=True, argument_default=argparse.SUPPRESS,
                                     allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="subsets and fewer epochs (stated on every figure)")
    parser.add_argument("--smoke", action="store_true", help="tiny data, seconds (what the tests run)")
    meanings = field_help(config_cls)
    for f in fields(config_cls):
        default = _default(f)
        flag = "--" + f.name.replace("_", "-")
        text = f"{meanings[f.name]} (default: {_shown(default)})".replace("%", "%%")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=text)
        elif isinstance(default, (list, tuple)):
            elem = type(default[0]) if default else str
            parser.add_argument(flag, dest=f.name, nargs="+", type=elem, help=text)
        elif default is None:
            parser.add_argument(flag, dest=f.name, type=str, help=text)
        else:
            parser.add_argument(flag, dest=f.name, type=type(default), help=text)
    return parser


def valid_flags(config_cls) -> List[str]:
    return ["--quick", "--smoke"] + ["--" + f.name.replace("_", "-") for f in fields(config_cls)]


def smoke_config(cfg):
    """Tiny data for the tests: the study's ``smoke()`` when it has one, else the quick
    config on the 8×8 digits (500 training images, every test image) with one epoch per
    ``*epochs`` field."""
    if hasattr(cfg, "smoke"):
        return cfg.smoke()
    changes = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "dataset":
            changes[f.name] = "digits"
        elif f.name == "train_size":
            changes[f.name] = 500
        elif f.name in ("test_size", "val_size"):
            changes[f.name] = 0
        elif (f.name == "epochs" or f.name.endswith("_epochs")) and isinstance(value, int) and value > 1:
            changes[f.name] = 1
    return replace(cfg, **changes)


def build_config(module: ModuleType, argv: Sequence[str], mode: Optional[str] = None):
    """``(config, mode)`` from the command-line flags of one study.

    The mode (``--quick`` / ``--smoke``, or ``mode``) is applied first, then every flag
    given overrides it.  An unknown flag raises :class:`UsageError` listing the valid ones.
    """
    name = study_name(module)
    parser = flag_parser(module.Config, f"python -m experiments run {name}")
    args, unknown = parser.parse_known_args(list(argv))
    if unknown:
        raise UsageError(f"{name}: unknown flag(s) {' '.join(unknown)}; valid flags: "
                         f"{' '.join(valid_flags(module.Config))}")
    given = vars(args)
    quick, smoke = given.pop("quick", False), given.pop("smoke", False)
    mode = mode or ("smoke" if smoke else "quick" if quick else "full")
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; choose one of {MODES}")
    cfg = module.Config()
    if mode in ("quick", "smoke"):
        cfg = cfg.quick()
    if mode == "smoke":
        cfg = smoke_config(cfg)
    defaults = {f.name: _default(f) for f in fields(module.Config)}
    for key, value in given.items():
        if isinstance(defaults[key], tuple):
            given[key] = tuple(value)
    return replace(cfg, **given), mode


class _Tee:
    """``log`` that prints and keeps the lines for ``log.txt``."""

    def __init__(self, echo: bool = True):
        self.lines: List[str] = []
        self.echo = echo

    def __call__(self, text: str = "") -> None:
        self.lines.append(str(text))
        if self.echo:
            print(text, flush=True)


def answer(name: str, metrics: object, cfg: object) -> str:
    """The study's answer to its question, read from its own numbers: its ``describe``
    paragraph (the report's), printed at the end of a run whose log gave no ``Answer:`` line."""
    from experiments.report import paragraph

    config = asdict(cfg) if is_dataclass(cfg) and not isinstance(cfg, type) else {}
    return paragraph(name, metrics if isinstance(metrics, dict) else {}, config)


def run_study(name: str, argv: Sequence[str] = (), mode: Optional[str] = None, echo: bool = True) -> dict:
    """Run one study with its flags; returns ``{"name", "out", "metrics", "wall_seconds", "mode"}``.

    Writes the study's own files, ``log.txt`` and ``manifest.json`` into its output folder;
    in quick and smoke mode every figure written by this run gets a band naming what the
    mode changed.
    """
    name = canonical_study(name)
    module = load_study(name)
    cfg, mode = build_config(module, argv, mode)
    out = output_path(module, cfg)
    log = _Tee(echo)
    note = "" if mode == "full" else f"{mode} mode: " + (mode_note(cfg, module.Config()) or "as the full run")
    log(f"== {name} ({mode} mode) → {out}" + (f"\n   {note}" if note else ""))
    started = time.time()
    t0 = time.perf_counter()
    metrics = module.run(cfg, log=log)
    wall = time.perf_counter() - t0
    if not any(line.startswith("Answer:") for text in log.lines for line in text.splitlines()):
        log("\nAnswer: " + answer(name, metrics, cfg))
    out.mkdir(parents=True, exist_ok=True)
    figures = [p for p in out.rglob("*.png") if p.stat().st_mtime >= started - 1]
    if note:
        for path in figures:
            stamp_png(path, note)
    log(f"== {name}: {wall:.1f} s")
    (out / "log.txt").write_text("\n".join(log.lines) + "\n")
    files = [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"]
    write_manifest(out, study_name(module), cfg, wall, mode, note, files)
    return {"name": name, "out": out, "metrics": metrics, "wall_seconds": wall, "mode": mode}


def split_all_flags(argv: Sequence[str]) -> Dict[str, List[str]]:
    """For ``run all``: the flags each study accepts (a flag no study knows is an error)."""
    modules = {}
    for name in STUDIES:
        try:
            modules[name] = load_study(name)
        except ImportError:  # reported when the study runs; its flags are unknown here
            pass
    tokens = list(argv)
    groups: List[List[str]] = []
    for tok in tokens:
        if tok.startswith("--"):
            groups.append([tok])
        elif groups:
            groups[-1].append(tok)
        else:
            raise UsageError(f"run all: unexpected argument {tok!r}; flags start with --")
    per_study: Dict[str, List[str]] = {name: [] for name in STUDIES}
    for group in groups:
        flag = group[0]
        base = flag[5:] if flag.startswith("--no-") else flag[2:]
        takers = [n for n, m in modules.items() if flag in ("--quick", "--smoke")
                  or "--" + base in valid_flags(m.Config)]
        if not takers:
            every = sorted({f for m in modules.values() for f in valid_flags(m.Config)})
            raise UsageError(f"run all: no experiment has the flag {flag}; valid flags: {' '.join(every)}")
        for n in takers:
            per_study[n] += group
    return per_study


def run_all(argv: Sequence[str] = (), echo: bool = True, only: Optional[Sequence[str]] = None,
            log: Callable[[str], None] = print) -> List[dict]:
    """Run every registered study (``only``: a subset) with the flags that apply to each.

    A failing study is reported and the others still run; writes ``run_all.md`` (time
    and status of each) into the output folder.
    """
    per_study = split_all_flags(argv)
    results = []
    t0 = time.perf_counter()
    for name in only or STUDIES:
        try:
            results.append(run_study(name, per_study[name], echo=echo))
        except Exception as err:  # keep going: one broken study must not hide the others
            log(f"== {name} FAILED: {type(err).__name__}: {err}\n{traceback.format_exc()}")
            results.append({"name": name, "error": f"{type(err).__name__}: {err}", "wall_seconds": None})
    total = time.perf_counter() - t0
    out_root = Path(_out_of(per_study))
    out_root.mkdir(parents=True, exist_ok=True)
    lines = ["| experiment | mode | seconds | status |", "|---|---|---|---|"]
    for r in results:
        secs = "" if r.get("wall_seconds") is None else f"{r['wall_seconds']:.1f}"
        lines.append(f"| {r['name']} | {r.get('mode', '')} | {secs} | "
                     f"{'failed: ' + r['error'] if 'error' in r else 'ok'} |")
    lines.append(f"| **total** | | {total:.1f} | |")
    (out_root / "run_all.md").write_text("\n".join(lines) + "\n")
    log("\n".join(lines))
    return results


def _out_of(per_study: Dict[str, List[str]]) -> str:
    for flags in per_study.values():
        if "--out" in flags:
            return flags[flags.index("--out") + 1]
    return "results"


def assignment_report(name: str, out: Path) -> int:
    """``report --assignment NAME``: the course page as ``OUT/report-NAME.pdf``, held to the
    page count its ``<!-- report max-pages N -->`` marker allows (exit 1 beyond it)."""
    import re

    from experiments.page_pdf import assignment_page, build_pdf

    try:
        page = assignment_page(name)
    except ValueError as err:
        raise UsageError(str(err)) from err
    pdf, pages = build_pdf(page, out / f"report-{name}.pdf")
    limit = re.search(r"<!-- report max-pages (\d+) -->", page.read_text())
    print(f"wrote {pdf} ({pages} pages{f' of at most {limit.group(1)}' if limit else ''})")
    if limit and pages > int(limit.group(1)):
        print(f"error: {pdf} has {pages} pages; the assignment allows {limit.group(1)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m experiments list | run NAME [flags] | run all [flags] | report [--out DIR] [--assignment NAME]
    | publish [--check]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = ("usage: python -m experiments list | run NAME [--quick] [--flag value ...] | "
             "run all [--quick] [--flag value ...] | report [--out DIR] [--assignment NAME] | publish [--check]")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage + "\n(python -m experiments list: the experiments; run NAME --help: its flags)")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "list":
            for name in STUDIES:
                try:
                    print(f"{name:20s} {question(load_study(name))}")
                except ImportError as err:
                    print(f"{name:20s} (cannot be imported: {err})")
            return 0
        if command == "run":
            if not rest:
                raise UsageError(f"run needs an experiment name; valid experiments: {', '.join(STUDIES)} (or 'all')")
            if rest[0] in ("-h", "--help"):
                print(usage)
                return 0
            if rest[0] == "all":
                results = run_all(rest[1:])
                return 1 if any("error" in r for r in results) else 0
            if len(rest) > 1 and rest[1] in ("-h", "--help"):
                flag_parser(load_study(rest[0]).Config,
                            f"python -m experiments run {canonical_study(rest[0], warn=False)}").print_help()
                return 0
            run_study(rest[0], rest[1:])
            return 0
        if command == "report":
            from experiments.report import build_report

            parser = argparse.ArgumentParser(prog="python -m experiments report")
            parser.add_argument("--out", default="results", help="the results folder to read and write into "
                                "(default: results)")
            parser.add_argument("--assignment", help="one assignment's report, built from its course page "
                                "docs/course/NAME.md into OUT/report-NAME.pdf (default: every study's results)")
            args = parser.parse_args(rest)
            if args.assignment:
                return assignment_report(args.assignment, Path(args.out))
            md, pdf = build_report(args.out)
            print(f"wrote {md} and {pdf}")
            return 0
        if command == "publish":
            from experiments.publish import main as publish_main

            return publish_main(rest)
        raise UsageError(f"unknown command {command!r}; {usage}")
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
