"""The front door: reports/index.html and README.md (every study, its answer, the other pages)
and the paper's scorecard, reports/claims.md and .csv (every claim row of every study).

Everything here is read from what the study reports wrote (each study's claims.csv and the
first heading of its report.md), so ``archlab report-index`` never trains or re-analyses.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from archlab.io import CSV_FLOAT, write_atomic
from archlab.report.doc import Doc, fmt_date, to_markdown, write_doc
from archlab.report.flops import MODEL_CLAIMS

VERDICT_ORDER = ("agrees", "disagrees", "equivalent", "smaller than claimed", "inconclusive")
#: pages that are not studies, linked from the index when they exist
OTHER_PAGES = (
    ("flops", "exact MACs and params of every variant (1 MAC = 1 multiply-add)"),
    ("bench", "training speed on this machine"),
    ("recipes", "the training presets measured over seeds"),
    ("principles", "the four design principles on one page"),
)
SCORECARD_COLUMNS = ["claim", "paper", "study", "comparison", "ours", "evidence"]


def _title(report_md: Path) -> str:
    for line in report_md.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return report_md.parent.name


def study_dirs(reports: Path) -> list[Path]:
    """Study report folders: those with a claims.csv beside their report."""
    return sorted(p.parent for p in Path(reports).glob("*/claims.csv") if p.parent.name)


def _counts(claims: pd.DataFrame, kind: str) -> str:
    rows = claims[claims["kind"] == kind]
    if rows.empty:
        return "none"
    c = Counter(rows["evidence"].astype(str))
    order = [v for v in VERDICT_ORDER if v in c] + sorted(set(c) - set(VERDICT_ORDER))
    return ", ".join(f"{c[v]} {v}" for v in order)


def all_claims(reports: Path) -> pd.DataFrame:
    """Every study's claims.csv in one frame, with a ``study`` column, sorted by claim."""
    frames = []
    for d in study_dirs(reports):
        claims = pd.read_csv(d / "claims.csv")
        claims.insert(0, "study", d.name)
        frames.append(claims)
    # the whole model's cost (about 5 G MACs, < 25 M params) is judged by the flops report
    model = Path(reports) / "flops" / MODEL_CLAIMS
    if model.exists():
        frames.append(pd.read_csv(model).assign(study="flops"))
    if not frames:
        return pd.DataFrame(columns=[*SCORECARD_COLUMNS, "kind"])
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["claim", "study"], kind="stable")


def study_table(reports: Path, claims: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per study: title, accuracy and cost verdict counts (``claims``: all_claims)."""
    claims = all_claims(reports) if claims is None else claims
    rows = []
    for d in study_dirs(reports):
        own = claims[claims["study"] == d.name]
        rows.append(
            {
                "study": d.name,
                "title": _title(d / "report.md") if (d / "report.md").exists() else d.name,
                "accuracy claims": _counts(own, "accuracy"),
                "cost claims": _counts(own, "cost"),
            }
        )
    return pd.DataFrame(rows, columns=["study", "title", "accuracy claims", "cost claims"])


def scorecard(reports: Path) -> pd.DataFrame:
    """Every claim row of every study: the paper's claim, the pair compared, ours, the verdict."""
    return all_claims(reports)[SCORECARD_COLUMNS]


def other_links(reports: Path) -> list[tuple[str, str, str]]:
    """(text, Markdown page, HTML page) of each other page that exists; the flops and bench
    pages are Markdown only (flops.md, bench.md), so both links point there."""
    links = []
    for name, what in OTHER_PAGES:
        d = reports / name
        if (d / "report.md").exists():
            links.append((f"{name}: {what}", f"{name}/report.md", f"{name}/report.html"))
        elif (d / f"{name}.md").exists():
            links.append((f"{name}: {what}", f"{name}/{name}.md", f"{name}/{name}.md"))
    return links


def _links(reports: Path, names: list[str]) -> list[tuple[str, str, str]]:
    return [(n, f"{n}/report.md", f"{n}/report.html") for n in names if (reports / n).is_dir()]


def write_index(reports: Path | str = "reports") -> dict[str, Path]:
    """Write reports/index.html, reports/README.md, reports/claims.md and reports/claims.csv."""
    reports = Path(reports)
    claims = all_claims(reports)  # each claims.csv read once
    studies, card = study_table(reports, claims), claims[SCORECARD_COLUMNS]
    files = {
        "claims.csv": write_atomic(
            reports / "claims.csv", card.to_csv(index=False, float_format=CSV_FLOAT)
        )
    }
    doc = Doc()
    doc.add("h1", "archlab reports")
    doc.add(
        "p",
        "Studies of the design choices of Inception-v3 (Szegedy et al., 2015) at small scale. "
        "Every verdict weighs the effect: agrees / disagrees (the sign is decided), equivalent "
        "(inside the claim's margin), smaller than claimed, or inconclusive (with the seeds it "
        "would take). Costs count 1 MAC = 1 multiply-add.",
    )
    doc.add("h2", "Studies")
    doc.add("table", studies)
    doc.add("links", _links(reports, studies["study"].tolist()))
    doc.add("h2", "Other pages")
    doc.add("links", other_links(reports))
    doc.add("h2", "The paper's scorecard")
    doc.add(
        "p", f"Every claim row of every study ({len(card)} rows); also claims.md and claims.csv."
    )
    doc.add("table", card)
    doc.add("p", f"Generated {fmt_date()} by `archlab report-index` from each study's claims.csv.")
    files.update(
        write_doc(doc, "archlab reports", reports, md_name="README.md", html_name="index.html")
    )
    scored = Doc()
    scored.add("h1", "The paper's claims at this scale: our verdicts")
    scored.add("table", card)
    files["claims.md"] = write_atomic(reports / "claims.md", to_markdown(scored, reports))
    return files


README_BEGIN = "<!-- archlab:results:begin (generated by `make reports`; do not edit) -->"
README_END = "<!-- archlab:results:end -->"


def readme_block(reports: Path | str = "reports") -> str:
    """The README's generated results: every study's verdict counts and every accuracy row."""
    reports = Path(reports)
    claims = all_claims(reports)
    studies = study_table(reports, claims)
    doc = Doc()
    doc.add("table", studies.drop(columns=["title"]))
    acc = claims[claims["kind"] == "accuracy"]
    doc.add("p", "Accuracy claim rows (ours: difference in test top-1, 95% interval):")
    doc.add("table", acc[["claim", "study", "comparison", "ours", "evidence"]])
    return "\n".join([README_BEGIN, to_markdown(doc, reports).strip(), README_END])


def update_readme(readme: Path | str, reports: Path | str = "reports") -> Path:
    """Replace the README's marked results block with ``readme_block``; error if unmarked."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme}: no {README_BEGIN!r} ... {README_END!r} block to rewrite")
    new = text[:start] + readme_block(reports) + text[end + len(README_END) :]
    return write_atomic(readme, new)
