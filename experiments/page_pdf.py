"""``python -m experiments report --assignment NAME``: one course page as a PDF report.

The page ``docs/course/NAME.md`` (its tasks, written answers, published tables and
figures) is laid out on A4 pages with matplotlib's PDF backend, so the report and the page
never disagree.  Markdown is read as far as the course pages use it: headings, paragraphs,
lists, tables, images, code blocks; HTML comments are dropped, emphasis marks removed.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from experiments.publish import COURSE

PAGE_W, PAGE_H = 8.27, 11.69          # inches, A4 portrait
MARGIN = 0.06                         # of the page width / height
MAX_IMAGE_HEIGHT = 0.36               # of the page height
HEADING_SIZES = {1: 14.0, 2: 11.5, 3: 10.0, 4: 9.0}
BODY_SIZE, TABLE_SIZE, CODE_SIZE = 8.0, 6.0, 6.5


@dataclass
class Block:
    """One thing to lay out: ``kind`` is heading, text, table, code or image."""

    kind: str
    text: str = ""
    level: int = 0
    path: Optional[Path] = None


def plain(text: str) -> str:
    """Markdown inline marks removed: links keep their text, emphasis and code marks go."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"(\*\*|__|\*|`)", "", text).replace("\\*", "*").replace("\\_", "_")


def blocks(markdown: str, base: Path) -> Iterator[Block]:
    """The page as a sequence of blocks; image paths resolved against ``base``."""
    markdown = re.sub(r"<!--.*?-->", "", markdown, flags=re.S)
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            yield Block("code", "\n".join(lines[i + 1:j]))
            i = j + 1
        elif stripped.startswith("#"):
            level = len(stripped) - len(stripped.lstrip("#"))
            yield Block("heading", plain(stripped.lstrip("#").strip()), level=level)
            i += 1
        elif stripped.startswith("|"):
            j = i
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            yield Block("table", table_text(lines[i:j]))
            i = j
        elif re.fullmatch(r"!\[[^\]]*\]\(([^)]+)\)", stripped):
            target = re.fullmatch(r"!\[[^\]]*\]\(([^)]+)\)", stripped).group(1)  # type: ignore[union-attr]
            yield Block("image", path=(base / target).resolve())
            i += 1
        else:
            j = i + 1
            while (j < len(lines) and lines[j].strip() and not lines[j].strip().startswith(("#", "|", "```", "!["))
                   and not re.match(r"\s*([-*]|\d+\.)\s", lines[j])):
                j += 1
            yield Block("text", plain(" ".join(s.strip() for s in lines[i:j])))
            i = j


def table_text(rows: List[str]) -> str:
    """A Markdown table as aligned plain-text columns."""
    cells = [[plain(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows
             if not set(r.strip()) <= set("|-: ")]
    if not cells:
        return ""
    n = max(len(r) for r in cells)
    widths = [max(len(r[k]) if k < len(r) else 0 for r in cells) for k in range(n)]
    return "\n".join("  ".join(c.ljust(widths[k]) for k, c in enumerate(r)).rstrip() for r in cells)


def table_font_size(text: str, largest: float = TABLE_SIZE, smallest: float = 3.0) -> float:
    """The monospace size (points) at which the widest line of ``text`` fits the page width."""
    widest = max((len(line) for line in text.splitlines()), default=1)
    fits = (1 - 2 * MARGIN) * PAGE_W * 72 / (0.6 * max(widest, 1))
    return max(smallest, min(largest, fits))


class Layout:
    """Blocks flowed down A4 pages of a ``PdfPages``; a new page when the next one does not fit."""

    def __init__(self, pdf, plt):
        self.pdf, self.plt = pdf, plt
        self.fig = None
        self.y = 0.0
        self.pages = 0

    def _line_height(self, size: float) -> float:
        return size * 1.25 / (PAGE_H * 72)

    def _room(self, height: float) -> None:
        if self.fig is None or self.y - height < MARGIN:
            self.flush()
            self.fig = self.plt.figure(figsize=(PAGE_W, PAGE_H))
            self.pages += 1
            self.y = 1 - MARGIN

    def text(self, text: str, size: float, weight: str = "normal", family: str = "sans-serif",
             gap: float = 0.006) -> None:
        em = 0.6 if family == "monospace" else 0.58 if weight == "bold" else 0.5   # average glyph width / size
        chars = int((1 - 2 * MARGIN) * PAGE_W * 72 / (size * em))
        lines: List[str] = []
        for para in text.splitlines() or [""]:
            lines += (textwrap.wrap(para, chars) or [""]) if family != "monospace" else [para[:chars]]
        step = self._line_height(size)
        while lines:
            self._room(step)
            fit = max(1, int((self.y - MARGIN) / step))
            chunk, lines = lines[:fit], lines[fit:]
            self.fig.text(MARGIN, self.y, "\n".join(chunk), fontsize=size, weight=weight, family=family, va="top",
                          linespacing=1.0)
            self.y -= step * len(chunk)
        self.y -= gap

    def image(self, path: Path) -> None:
        import matplotlib.image as mpimg

        if not path.exists():
            self.text(f"[missing figure: {path.name}]", BODY_SIZE)
            return
        img = mpimg.imread(path)
        aspect = img.shape[0] / img.shape[1] * PAGE_W / PAGE_H        # height per width, in page fractions
        width = 1 - 2 * MARGIN
        height = width * aspect
        if height > MAX_IMAGE_HEIGHT:
            height, width = MAX_IMAGE_HEIGHT, MAX_IMAGE_HEIGHT / aspect
        self._room(height)
        ax = self.fig.add_axes((0.5 - width / 2, self.y - height, width, height))
        ax.imshow(img, interpolation="antialiased")
        ax.axis("off")
        self.y -= height + 0.008

    def flush(self) -> None:
        if self.fig is not None:
            self.pdf.savefig(self.fig)
            self.plt.close(self.fig)
            self.fig = None


def build_pdf(page: Path, out: Path) -> Tuple[Path, int]:
    """Write ``out`` (a PDF) from the Markdown ``page``; returns ``(out, number of pages)``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    out.parent.mkdir(parents=True, exist_ok=True)
    with PdfPages(out) as pdf:
        layout = Layout(pdf, plt)
        for block in blocks(page.read_text(), page.parent):
            if block.kind == "heading":
                layout.text(block.text, HEADING_SIZES.get(block.level, BODY_SIZE), weight="bold", gap=0.004)
            elif block.kind == "text":
                layout.text(block.text, BODY_SIZE)
            elif block.kind == "table":
                layout.text(block.text, table_font_size(block.text), family="monospace")
            elif block.kind == "code":
                layout.text(block.text, CODE_SIZE, family="monospace")
            elif block.path is not None:
                layout.image(block.path)
        layout.flush()
    return out, layout.pages


def assignment_page(name: str, course: Path = COURSE) -> Path:
    """``docs/course/NAME.md``; an unknown name lists the pages there are."""
    page = course / f"{name}.md"
    if not page.exists() or name.lower() == "readme":
        names = sorted(p.stem for p in course.glob("*.md") if p.stem.lower() != "readme")
        raise ValueError(f"no course page {name!r}; the assignments are: {', '.join(names)}")
    return page
