"""The front door (reports/index.html, README.md) and the paper's scorecard (claims.md/.csv)."""

from pathlib import Path

import pandas as pd
import pytest

from archlab.report.index import (
    README_BEGIN,
    README_END,
    readme_block,
    scorecard,
    study_table,
    update_readme,
    write_index,
)
from tests.studykit import run_main


def _study(root: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    d = root / name
    d.mkdir(parents=True)
    (d / "report.md").write_text(f"# {name}: a title\n\nbody\n")
    (d / "report.html").write_text("<html></html>")
    claims = pd.DataFrame(
        [
            {"claim": c, "section": "3", "kind": k, "paper": f"paper says {c}",
             "comparison": "a vs b", "ours": "+1.00 pt", "evidence": e}
            for c, k, e in rows
        ]
    )  # fmt: skip
    claims.to_csv(d / "claims.csv", index=False)


def test_index_lists_every_study_with_its_verdict_counts_and_links(tmp_path: Path) -> None:
    _study(tmp_path, "one", [("x_acc", "accuracy", "agrees"), ("x_cost", "cost", "agrees")])
    _study(
        tmp_path,
        "two",
        [("y_acc", "accuracy", "inconclusive"), ("x_acc", "accuracy", "equivalent")],
    )
    (tmp_path / "flops").mkdir()
    (tmp_path / "flops" / "report.md").write_text("# flops\n")
    table = study_table(tmp_path).set_index("study")
    assert table.loc["one", "accuracy claims"] == "1 agrees"
    assert table.loc["two", "accuracy claims"] == "1 equivalent, 1 inconclusive"
    assert (
        table.loc["one", "cost claims"] == "1 agrees" and table.loc["two", "cost claims"] == "none"
    )
    files = write_index(tmp_path)
    readme = files["README.md"].read_text()
    page = files["index.html"].read_text()
    assert "[one](one/report.md)" in readme and "[flops: " in readme
    assert '<a href="two/report.html">two</a>' in page and 'href="flops/report.html"' in page
    card = pd.read_csv(files["claims.csv"])
    assert len(card) == 4 and card["claim"].tolist() == sorted(card["claim"].tolist())
    assert list(card.columns) == ["claim", "paper", "study", "comparison", "ours", "evidence"]
    assert "| x_acc | paper says x_acc | two |" in files["claims.md"].read_text()


def test_scorecard_of_an_empty_folder_is_empty(tmp_path: Path) -> None:
    assert scorecard(tmp_path).empty and study_table(tmp_path).empty


def test_cli_writes_the_index(tmp_path: Path, capsys) -> None:
    _study(tmp_path, "one", [("x_acc", "accuracy", "agrees")])
    rc, out, err = run_main(capsys, "report-index", "--reports", str(tmp_path))
    assert rc == 0 and err == "" and (tmp_path / "index.html").exists()
    assert str(tmp_path / "README.md") in out


def test_readme_results_block_matches_the_committed_reports() -> None:
    root = Path(__file__).resolve().parent.parent
    text = (root / "README.md").read_text(encoding="utf-8")
    start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    assert text[start:end] == readme_block(root / "reports"), "run `make reports`"


def test_update_readme_rewrites_only_the_block(tmp_path: Path) -> None:
    _study(tmp_path, "one", [("x_acc", "accuracy", "agrees")])
    readme = tmp_path / "R.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold\n{README_END}\noutro\n")
    update_readme(readme, tmp_path)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old" not in text
    assert "| x_acc | one | a vs b | +1.00 pt | agrees |" in text
    readme.write_text("no block")
    with pytest.raises(ValueError):
        update_readme(readme, tmp_path)


def test_flops_and_bench_pages_are_linked_and_the_whole_model_cost_is_scored(
    tmp_path: Path,
) -> None:
    _study(tmp_path, "one", [("x_acc", "accuracy", "agrees")])
    for name in ("flops", "bench"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.md").write_text(f"# {name}\n")
    rows = "claim,kind,paper,comparison,ours,evidence\n"
    rows += "v3_macs,cost,about 5 G,m (whole model),5.7 G,agrees\n"
    (tmp_path / "flops" / "model_claims.csv").write_text(rows)
    files = write_index(tmp_path)
    readme = files["README.md"].read_text()
    assert "(flops/flops.md)" in readme and "(bench/bench.md)" in readme
    card = pd.read_csv(files["claims.csv"])
    assert card.set_index("claim").loc["v3_macs", "study"] == "flops"
    assert "flops" not in study_table(tmp_path)["study"].tolist()  # a page, not a study
