"""python -m experiments publish / publish --check / report --assignment: the course pages' machinery."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from experiments import runner
from experiments.page_pdf import PAGE_W, blocks, build_pdf, table_font_size, table_text
from experiments.publish import BLOCK, COURSE, MAX_FIGURE_BYTES, Part, downscale, main, provenance, publish_page
from experiments.registry import STUDIES

ANSWER = "**Answer.** Written by a person; publish never touches this line."


def _noisy_png(path: Path, size=(900, 1400)) -> Path:
    """A PNG that compresses badly (noise), well over the published size limit."""
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(path)
    return path


def _results(root: Path, mode: str = "full", table: str = "| a | b |\n|---|---|\n| 1 | 2 |\n") -> Path:
    folder = root / "baseline"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"experiment": "baseline", "mode": mode, "git_commit": "0123456789abcdef", "machine": "Test CPU",
                "threads": {"cpu_count": 2, "blas": [{"num_threads": 2}], "torch_threads": 2},
                "config": {"jobs": 1}, "wall_seconds": 42.4, "finished": "2026-12-04 21:00:00",
                "command": "/repo/experiments/__main__.py run baseline --epochs 20"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "summary.md").write_text(table)
    _noisy_png(folder / "curves.png")
    return root


def _page(course: Path) -> Path:
    course.mkdir(parents=True, exist_ok=True)
    page = course / "demo.md"
    page.write_text("# Demo\n\n## Task 1\n\n<!-- publish baseline figures=curves.png tables=summary -->\n"
                    "<!-- /publish -->\n\n" + ANSWER + "\n")
    return page


def test_publish_writes_provenance_table_and_downscaled_figure_and_keeps_the_answer(tmp_path):
    results, course = _results(tmp_path / "results"), tmp_path / "course"
    page = _page(course)
    outcome = publish_page(page, results, course)
    text = page.read_text()
    assert outcome.updated == ["baseline"] and outcome.missing == []
    assert "`python -m experiments run baseline --epochs 20`" in text
    assert "commit `0123456789`" in text and "Test CPU, 2 cores" in text and "wall time 42 s" in text
    assert "| 1 | 2 |" in text
    assert "![baseline: curves](figures/baseline/curves.png)" in text
    figure = course / "figures" / "baseline" / "curves.png"
    assert 0 < figure.stat().st_size <= MAX_FIGURE_BYTES
    assert text.rstrip().endswith(ANSWER)
    # a second publish changes nothing
    again = publish_page(page, results, course)
    assert again.updated == [] and page.read_text() == text


def test_a_page_outside_the_course_folder_links_its_figures_relative_to_itself(tmp_path):
    """docs/performance.md (and the README) hold marked parts too: the figure still goes
    into the course's figures/ folder, and the link works from the page's own folder."""
    results, course = _results(tmp_path / "results"), tmp_path / "docs" / "course"
    course.mkdir(parents=True)
    page = tmp_path / "docs" / "performance.md"
    page.write_text("# Speed\n\n<!-- publish baseline figures=curves.png -->\n<!-- /publish -->\n")
    assert publish_page(page, results, course).updated == ["baseline"]
    assert "![baseline: curves](course/figures/baseline/curves.png)" in page.read_text()
    assert (page.parent / "course" / "figures" / "baseline" / "curves.png").exists()


def test_publish_check_passes_when_current_and_fails_when_results_changed(tmp_path, capsys):
    results, course = _results(tmp_path / "results"), tmp_path / "course"
    page = _page(course)
    args = ["--results", str(results), "--course", str(course)]
    assert main(args) == 0
    assert main(args + ["--check"]) == 0
    _results(results, table="| a | b |\n|---|---|\n| 1 | 3 |\n")
    before = page.read_text()
    assert main(args + ["--check"]) == 1
    assert "baseline differs" in capsys.readouterr().out
    assert page.read_text() == before, "--check must write nothing"
    (course / "figures" / "baseline" / "curves.png").unlink()
    assert main(args) == 0 and main(args + ["--check"]) == 0


def test_publish_check_fails_when_a_figure_file_is_missing(tmp_path):
    results, course = _results(tmp_path / "results"), tmp_path / "course"
    _page(course)
    args = ["--results", str(results), "--course", str(course)]
    assert main(args) == 0
    (course / "figures" / "baseline" / "curves.png").unlink()
    assert main(args + ["--check"]) == 1


def test_only_full_runs_are_published(tmp_path, capsys):
    results, course = _results(tmp_path / "results", mode="quick"), tmp_path / "course"
    page = _page(course)
    before = page.read_text()
    outcome = publish_page(page, results, course)
    assert outcome.updated == [] and "quick-mode run" in outcome.missing[0]
    assert page.read_text() == before


def test_a_study_not_run_is_reported_with_its_command(tmp_path):
    course = tmp_path / "course"
    page = _page(course)
    outcome = publish_page(page, tmp_path / "empty", course)
    assert "python -m experiments run baseline" in outcome.missing[0]


def test_a_missing_table_names_the_tables_there_are(tmp_path):
    results, course = _results(tmp_path / "results"), tmp_path / "course"
    page = course / "p.md"
    course.mkdir()
    page.write_text("<!-- publish baseline tables=nothere -->\n<!-- /publish -->\n")
    outcome = publish_page(page, results, course)
    assert "nothere.md not found" in outcome.missing[0] and "summary" in outcome.missing[0]


@pytest.mark.parametrize("spec", ["", "baseline figure=a.png", "baseline tables"])
def test_bad_markers_are_errors(spec):
    with pytest.raises(ValueError):
        Part.parse(spec)


def test_downscale_fits_the_limit_and_keeps_the_aspect(tmp_path):
    from PIL import Image

    data = downscale(_noisy_png(tmp_path / "big.png", size=(1000, 2000)))
    assert len(data) <= MAX_FIGURE_BYTES
    import io

    with Image.open(io.BytesIO(data)) as im:
        assert abs(im.width / im.height - 2.0) < 0.02


def test_provenance_reads_the_command_threads_and_jobs():
    line = provenance({"command": "/x/experiments/__main__.py run seeds --jobs 2", "git_commit": "abcdef0123456+dirty",
                       "machine": "CPU", "threads": {"cpu_count": 2, "blas": [{"num_threads": 1}]},
                       "config": {"jobs": 2}, "wall_seconds": 300.0, "finished": "today"})
    assert "`python -m experiments run seeds --jobs 2`" in line and "abcdef0123+dirty" in line
    assert "2 jobs of one thread each" in line and "5.0 min (300 s)" in line


def test_the_course_pages_name_registered_studies_and_valid_markers():
    pages = sorted(COURSE.glob("*.md"))
    assert {p.stem for p in pages} >= {"README", "azencot", "uppsala", "mlp-project", "lab4", "ift6135"}
    parts = [Part.parse(m.group("spec")) for p in pages for m in BLOCK.finditer(p.read_text())]
    assert parts, "the course pages hold no publish markers"
    assert {p.study.split("/")[0] for p in parts} <= set(STUDIES)
    for page in pages:
        text = page.read_text()
        assert len(re.findall(r"^<!-- publish ", text, re.M)) == len(re.findall(r"^<!-- /publish -->", text, re.M))


def test_markdown_blocks_for_the_pdf():
    md = ("# Title\n\nSome *text* with `code`\nand a [link](x.md).\n\n- a list item\n\n| a | b |\n|---|---|\n"
          "| 1 | 22 |\n\n![fig](figures/f.png)\n\n<!-- hidden -->\n```\ncode block\n```\n")
    got = list(blocks(md, Path("/base")))
    assert [b.kind for b in got] == ["heading", "text", "text", "table", "image", "code"]
    assert got[1].text == "Some text with code and a link."
    assert got[4].path == Path("/base/figures/f.png")
    assert table_text(["| a | b |", "|---|---|", "| 1 | 22 |"]) == "a  b\n1  22"


def test_report_assignment_builds_a_pdf_and_holds_the_page_limit(tmp_path, monkeypatch, capsys):
    from experiments import page_pdf

    results, course = _results(tmp_path / "results"), tmp_path / "course"
    page = _page(course)
    publish_page(page, results, course)
    pdf, n = build_pdf(page, tmp_path / "demo.pdf")
    assert pdf.read_bytes().startswith(b"%PDF") and n >= 1
    assert len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes())) == n
    long_page = course / "long.md"
    long_page.write_text("<!-- report max-pages 1 -->\n" + "\n\n".join(f"Paragraph {i}. " + "word " * 80
                                                                        for i in range(60)))
    monkeypatch.setattr(page_pdf, "assignment_page", lambda name: long_page)
    assert runner.main(["report", "--assignment", "long", "--out", str(tmp_path)]) == 1
    assert "allows 1" in capsys.readouterr().err


def test_report_assignment_names_the_pages_there_are(capsys):
    assert runner.main(["report", "--assignment", "nothere"]) == 2
    assert "azencot" in capsys.readouterr().err


def test_a_wide_table_is_set_small_enough_to_fit_the_page():
    narrow, wide = "a  b\n1  2", "x" * 200
    assert table_font_size(narrow) == 6.0
    size = table_font_size(wide)
    assert size < 6.0 and 200 * 0.6 * size <= 0.88 * PAGE_W * 72 + 1e-9
