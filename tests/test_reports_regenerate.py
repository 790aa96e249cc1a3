"""The committed reports are what the committed journals give: every study's tables re-rendered
from its journal (no training) equal the committed CSVs, so no report can drift from its data."""

from pathlib import Path

import pandas as pd
import pytest

from archlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
JOURNALS = sorted((ROOT / "results").glob("*/journal.log"))
TABLES = ("summary.csv", "comparisons.csv", "claims.csv")


def test_there_are_committed_journals() -> None:
    assert len(JOURNALS) >= 10, JOURNALS


@pytest.mark.parametrize("journal", JOURNALS, ids=lambda p: p.parent.name)
def test_report_tables_regenerate_from_the_journal(journal: Path, tmp_path: Path) -> None:
    name = journal.parent.name
    committed = ROOT / "reports" / name
    args = ["study", "report", name, "--storage", str(journal)]
    args += ["--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports")]
    assert main(args) == 0
    fresh = tmp_path / "reports" / name
    for table in TABLES:
        if not (committed / table).exists():
            continue
        pd.testing.assert_frame_equal(
            pd.read_csv(fresh / table), pd.read_csv(committed / table), obj=f"{name}/{table}"
        )
    runs = pd.read_csv(tmp_path / "results" / name / "runs.csv")
    pd.testing.assert_frame_equal(runs, pd.read_csv(journal.parent / "runs.csv"), obj="runs.csv")
