"""The How tab's table of the papers' figures beside this project's: each reported figure with its source, ours
from the shipped curves and evaluation (read, not written into the table), and the tab without it when the data
file is missing."""

from __future__ import annotations

import json

from controlnet_demo.models import curves
from controlnet_demo.models.presets import OFFLINE
from controlnet_demo.paths import OFFLINE_MODEL_DIR, PAPER_FIGURES
from controlnet_demo.ui import how_tab


def test_each_reported_figure_stands_beside_its_source_and_our_measurement():
    shipped = curves.training_curves(OFFLINE.controlnets)
    scores = json.loads((OFFLINE_MODEL_DIR / "evaluation.json").read_text())
    table = how_tab.paper_table(shipped, scores)
    rows = json.loads(PAPER_FIGURES.read_text())["rows"]
    lines = table.splitlines()[2:]
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows):
        assert row["paper"] in line and row["paper_source"] in line and row["ours"] in line
    a, b, _ = shipped["canny"]["largest_jump"]
    assert f"canny: steps {a:,}–{b:,}" in table  # from the shipped curve
    matched = scores["conditions"]["depth"]["matched"]
    assert f"depth layer IoU {matched:.2f}" in table  # from the shipped evaluation
    pp = scores["conditions"]["canny"]["controlnet_pp_f1"]
    assert f"canny F1 by ControlNet++'s definition {pp:.2f}" in table


def test_without_its_data_file_the_tab_has_no_table(monkeypatch, tmp_path):
    monkeypatch.setattr(how_tab, "PAPER_FIGURES", tmp_path / "missing.json")
    assert how_tab.paper_table({}, None) is None


def test_the_figures_are_written_in_the_pages_language():
    shipped = curves.training_curves(OFFLINE.controlnets)
    scores = json.loads((OFFLINE_MODEL_DIR / "evaluation.json").read_text())
    table = how_tab.evaluation_table(scores, "ko")
    assert (
        table.startswith("| 조건 | 지표 |") and f"조건마다 평가용 장면 {scores['n']}개" in table and "엣지 F1" in table
    )
    lines = how_tab.convergence_lines(shipped, "zh-CN")
    assert lines.count("匹配分数的最大跃升") == len(shipped) and "; from step" not in lines  # the stages too
    papers = how_tab.paper_table(shipped, scores, "ko")
    assert "| | 보고된 값 |" in papers and "함께 배포된 ControlNet의 가장 큰 도약" in papers
    for row in json.loads(PAPER_FIGURES.read_text())["rows"]:
        assert row["paper_source"] not in papers and row["what"] not in papers  # every cell translated
    assert how_tab.paper_table(shipped, scores) == how_tab.paper_table(shipped, scores, "en")
