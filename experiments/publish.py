"""``python -m experiments publish [--check]``: the generated parts of the course pages, from ``results/``.

A course page (``docs/course/*.md``, the README's Results section, docs/performance.md) marks each part
that a study's results fill in::

    <!-- publish baseline figures=error_curves.png,misclassified.png tables=summary,epochs -->
    ... written by publish: provenance line, tables, figures ...
    <!-- /publish -->

``STUDY`` may name a run folder (``torch_baselines/default``).  Between the markers
``publish`` writes, from ``results/<study>/``:

- the provenance line: the command that made the run, its commit, the machine, the
  threads, the wall time and when it finished (from ``manifest.json``);
- each named table (``<table>.md``), whole;
- each named figure, downscaled for the web (at most :data:`MAX_FIGURE_BYTES`) into
  ``docs/course/figures/<study>/``, embedded with the digest of the full-size source.

Everything outside the markers (the task list, the written answers) is a person's and is
never touched.  Only full-mode runs are published: a quick or smoke run, or a study not
run yet, leaves its part as it is and is reported.  ``--check`` writes nothing and exits 1
when any part differs from what ``results/`` would give (a stale page, or a figure file
missing or too large); a part whose results are absent is reported, not failed, since
``results/`` is each user's own.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "docs" / "course"
MAX_FIGURE_BYTES = 200_000
MAX_COURSE_BYTES = 8_000_000
FIGURE_WIDTH = 1100           # pixels of a published figure at most (before any further shrinking)
BLOCK = re.compile(r"<!-- publish (?P<spec>[^>]*?) -->\n(?P<body>.*?)<!-- /publish -->", re.S)


@dataclass(frozen=True)
class Part:
    """One marked part of a page: which study (and run), which figures and tables."""

    study: str
    figures: Tuple[str, ...] = ()
    tables: Tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> "Part":
        """``"baseline figures=a.png,b.png tables=summary"`` → Part; unknown keys are an error."""
        words = spec.split()
        if not words:
            raise ValueError("publish marker without a study name")
        values: Dict[str, Tuple[str, ...]] = {"figures": (), "tables": ()}
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if not sep or key not in values:
                raise ValueError(f"publish marker {spec!r}: expected figures=... or tables=..., got {word!r}")
            values[key] = tuple(v for v in value.split(",") if v)
        return cls(words[0], values["figures"], values["tables"])

    @property
    def slug(self) -> str:
        return self.study.replace("/", "-")


@dataclass
class Outcome:
    """What publishing (or checking) one page found."""

    page: Path
    updated: List[str] = field(default_factory=list)
    stale: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    files: Dict[Path, bytes] = field(default_factory=dict)


# -- the generated text ------------------------------------------------------------------------
def provenance(manifest: dict) -> str:
    """One line: command, commit, machine, threads, wall time, date."""
    argv = str(manifest.get("command", "")).split()
    args = argv[1:] if argv and argv[0].endswith((".py", "experiments")) else argv
    command = "python -m experiments " + " ".join(args) if args else manifest.get("rerun", "?")
    threads = manifest.get("threads", {})
    blas = [p.get("num_threads") for p in threads.get("blas", []) if p.get("num_threads")]
    jobs = manifest.get("config", {}).get("jobs")
    thread_text = ", ".join(filter(None, [
        f"BLAS {max(blas)}" if blas else "", f"torch {threads['torch_threads']}" if "torch_threads" in threads else "",
        f"{jobs} jobs of one thread each" if isinstance(jobs, int) and jobs > 1 else ""]))
    commit = str(manifest.get("git_commit") or "?")
    commit = commit[:10] + ("+dirty" if commit.endswith("+dirty") else "")
    machine = manifest.get("machine") or manifest.get("platform", "?")
    return (f"*Run:* `{command}` · commit `{commit}` · {machine}, {threads.get('cpu_count', '?')} cores · "
            f"threads: {thread_text or '?'} · wall time {_duration(manifest.get('wall_seconds'))} · "
            f"finished {manifest.get('finished', '?')}")


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min ({seconds:.0f} s)"


def downscale(png: Path, max_bytes: int = MAX_FIGURE_BYTES, width: int = FIGURE_WIDTH) -> bytes:
    """The PNG at most ``width`` pixels wide, in 256 colours, shrunk until it fits in ``max_bytes``."""
    from PIL import Image

    with Image.open(png) as im:
        image = im.convert("RGB")
    while True:
        w = min(width, image.width)
        small = image.resize((w, max(1, round(image.height * w / image.width))), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        small.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buf, "PNG", optimize=True)
        if buf.tell() <= max_bytes or w <= 300:
            return buf.getvalue()
        width = int(w * 0.85)


def render(part: Part, results: Path, course: Path, page_dir: Optional[Path] = None) -> Tuple[str, Dict[Path, bytes]]:
    """The generated body of one part and the figure files it needs: ``(text, {path: bytes})``.
    Figures go into ``course/figures/`` and are linked relative to ``page_dir`` (default: ``course``).

    Raises FileNotFoundError when the study has no full-mode results, naming what is missing.
    """
    folder = results / part.study
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} not found: "
                                f"run `python -m experiments run {part.study.split('/')[0]}`")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("mode") != "full":
        raise FileNotFoundError(f"{folder} holds a {manifest.get('mode')}-mode run; only full runs are published")
    lines = [provenance(manifest), ""]
    for table in part.tables:
        path = folder / f"{table}.md"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found (tables in {folder}: "
                                    f"{', '.join(p.stem for p in sorted(folder.glob('*.md'))) or 'none'})")
        lines += [f"*Table `{table}`* (`results/{part.study}/{table}.csv`):", "", path.read_text().strip(), ""]
    files: Dict[Path, bytes] = {}
    for figure in part.figures:
        path = folder / figure
        if not path.exists():
            raise FileNotFoundError(f"{path} not found (figures in {folder}: "
                                    f"{', '.join(p.name for p in sorted(folder.glob('*.png'))) or 'none'})")
        target = course / "figures" / part.slug / figure
        files[target] = downscale(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        link = Path(os.path.relpath(target, page_dir or course)).as_posix()
        lines += [f"![{part.study}: {Path(figure).stem}]({link})", "",
                  f"<!-- source results/{part.study}/{figure} sha256 {digest} -->", ""]
    return "\n".join(lines).rstrip() + "\n", files


# -- pages -------------------------------------------------------------------------------------
def publish_page(page: Path, results: Path, course: Path = COURSE, check: bool = False) -> Outcome:
    """Regenerate (or, with ``check``, compare) every marked part of one page."""
    text = page.read_text()
    outcome = Outcome(page)

    def replace(match: "re.Match[str]") -> str:
        part = Part.parse(match.group("spec"))
        try:
            body, files = render(part, results, course, page.parent)
        except FileNotFoundError as err:
            outcome.missing.append(f"{part.study}: {err}")
            return match.group(0)
        bad_files = [p for p in files if not p.exists() or p.stat().st_size > MAX_FIGURE_BYTES]
        if body != match.group("body") or bad_files:
            (outcome.stale if check else outcome.updated).append(part.study)
        outcome.files.update(files)
        return f"<!-- publish {match.group('spec')} -->\n{body}<!-- /publish -->"

    new = BLOCK.sub(replace, text)
    if not check:
        for path, data in outcome.files.items():
            if not path.exists() or path.read_bytes() != data:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        if new != text:
            page.write_text(new)
    return outcome


def pages(course: Path = COURSE, extra: Sequence[Path] = (REPO / "README.md", REPO / "docs" / "performance.md")
          ) -> List[Path]:
    """The course pages, then the extra pages (the README, docs/performance.md) that hold marked parts."""
    return sorted(course.glob("*.md")) + [p for p in extra if p.exists() and "<!-- publish " in p.read_text()]


def course_size(course: Path = COURSE) -> int:
    return sum(p.stat().st_size for p in course.rglob("*") if p.is_file())


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments publish",
                                     description="Write the generated parts of docs/course/ (and the README's "
                                                 "Results) from the full-mode runs in results/.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a page's generated part differs from results/")
    parser.add_argument("--results", default="results", help="the results folder to read (default: results)")
    parser.add_argument("--course", default=str(COURSE), help="the course pages folder (default: docs/course)")
    args = parser.parse_args(argv)
    results, course = Path(args.results), Path(args.course)
    extra = (REPO / "README.md", REPO / "docs" / "performance.md") if course.resolve() == COURSE.resolve() else ()
    outcomes = [publish_page(p, results, course, check=args.check) for p in pages(course, extra)]
    for o in outcomes:
        for study in o.updated:
            print(f"{o.page.name}: {study} updated")
        for study in o.stale:
            print(f"{o.page.name}: {study} differs from {results}/ (run `python -m experiments publish`)")
        for note in o.missing:
            print(f"{o.page.name}: not published: {note}")
    size = course_size(course)
    too_big = size > MAX_COURSE_BYTES
    print(f"{course}: {size / 1e6:.2f} MB of at most {MAX_COURSE_BYTES / 1e6:.0f} MB"
          + (" (too large)" if too_big else ""))
    if args.check:
        return 1 if too_big or any(o.stale for o in outcomes) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
