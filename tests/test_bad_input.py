"""Bad input: exit 2, one line on stderr naming what is wrong and what is allowed, no changes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from archlab.cli import main
from tests.studykit import ARCHLAB, env, one_torch_thread, tree, write_study

PASSWORD = "hunter2-bad-input"
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")  # fmt: skip
BASE = "base: {width_mult: 0.25, depth_mult: 0.5}"
VARIANT = "    - {conv5x5: 5x5}"
SMOKE = '  smoke: {seeds: 1, dataset: "synthetic:64", val_size: 0, batch_size: 32, threads: 1}'


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    yield from one_torch_thread()


@dataclass(frozen=True)
class Case:
    """A bad input: how to spoil the good study file or command, and what the line must say."""

    id: str
    expect: tuple[str, ...]  # fragments of the error line (file, key, value, what is allowed)
    edit: Callable[[str, Path], str | bytes] | None = None  # (study text, tmp) -> new content
    args: tuple[str, ...] = ()  # extra arguments of `study run`
    argv: tuple[str, ...] | None = None  # a whole command instead ({file} = the study file)
    hidden: tuple[str, ...] = field(default=())  # must not appear anywhere in the output


def swap(old: str, new: str) -> Callable[[str, Path], str]:
    """An edit replacing ``old`` (which must be there) by ``new``."""

    def edit(text: str, _: Path) -> str:
        assert old in text, (old, text)
        return text.replace(old, new)

    return edit


def add(line: str) -> Callable[[str, Path], str]:
    """An edit appending a top-level line."""
    return lambda text, _: text + line + "\n"


def whole(content: str | bytes) -> Callable[[str, Path], str | bytes]:
    """An edit replacing the whole file."""
    return lambda *_: content


def truncated_idx(text: str, tmp: Path) -> str:
    """The study reads an IDX folder whose image file stops inside its header."""
    folder = tmp / "idx"
    folder.mkdir()
    for stem in IDX_STEMS:
        (folder / stem).write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x10\x00\x00")
    return text.replace('"synthetic:64"', f'"idx:{folder}"')


VALID_SPEC = "width_mult"  # stands for the list of every ArchSpec field in "valid: ..."
CASES = [
    Case("malformed-yaml", ("bad.yaml: line 2: invalid YAML", "mapping values are not allowed"),
         whole("name: bad\ntitle: a: b\nseeds: 1\n")),
    Case("not-utf8", ("bad.yaml", "not a UTF-8 text file"), whole(b"name: bad\n\xff\xfe\x00")),
    Case("empty-file", ("bad.yaml", "name: missing"), whole("")),
    Case("top-level-list", ("bad.yaml", "(top level)", "expected a mapping, got list"),
         whole("- name\n- bad\n")),
    Case("unknown-top-level-key", ("bad.yaml", "colour: unknown key", "valid: name, title"),
         add("colour: red")),
    Case("unknown-nested-key", ("bad.yaml", "base.wdith: unknown key", "valid: conv5x5", "n,"),
         swap(BASE, "base: {width_mult: 0.25, wdith: 2}")),
    Case("unknown-axis", ("variants.one_factor[0].conv7x7: unknown key", "valid: conv5x5"),
         swap(VARIANT, "    - {conv7x7: 5x5}")),
    Case("unknown-option", ("variants.one_factor[0].conv5x5", "'9x9' is not a conv5x5 option",
                            "valid: 3x3x2, 3x3x2_sqrt, 5x5, 1x5_5x1"),
         swap(VARIANT, "    - {conv5x5: 9x9}")),
    Case("unknown-kind", ("kind: 'survey' is not a study kind", "valid: compare, search"),
         add("kind: survey")),
    Case("unknown-model", ("model: 'resnet50' is not a model", "inception_mini"),
         add("model: resnet50")),
    Case("unknown-claim", ("claims[0]: 'faster' is not a claim id", "valid: "),
         add("claims: [faster]")),
    Case("unknown-recipe-key", ("recipe.speed: unknown key", "valid: dataset"),
         add("recipe: {speed: 2}")),
    Case("seeds-not-a-number", ("seeds: 'abc' is not a number of seeds",), add("seeds: abc")),
    Case("seed-not-an-integer", ("seeds[1]: seed 'x' is not an integer in [0, 100,000)",),
         add("seeds: [0, x]")),
    Case("epochs-not-a-number", ("recipe.epochs: 'ten' is not a number",),
         add("recipe: {epochs: ten}")),
    Case("epochs-negative", ("recipe: epochs=-1.0 is invalid", "allowed: a number > 0"),
         add("recipe: {epochs: -1}")),
    Case("smoothing-one", ("label_smoothing=1.0 is invalid", "allowed: a number in [0, 1)"),
         add("recipe: {label_smoothing: 1.0}")),
    Case("smoothing-negative", ("label_smoothing=-0.1 is invalid", "[0, 1)"),
         add("recipe: {label_smoothing: -0.1}")),
    Case("smoothing-in-a-scale", ("scales.smoke.label_smoothing", "'high' is not a number"),
         swap("threads: 1}", "threads: 1, label_smoothing: high}")),
    Case("width-zero", ("base: width_mult=0.0 is out of range", "> 0"),
         swap(BASE, "base: {width_mult: 0, depth_mult: 0.5}")),
    Case("n-below-3", ("variants.one_factor[0]: n=1 is out of range", "odd integer >= 3"),
         swap(VARIANT, "    - {n: 1}")),
    Case("n-even", ("variants.one_factor[0]: n=4 must be an odd integer >= 3",),
         swap(VARIANT, "    - {n: 4}")),
    Case("iso-macs-unreachable", ("iso_macs (variant", "budget 1 MACs is unreachable",
                                  "width_mult"), add("iso_macs: {budget: 1}")),
    Case("iso-macs-bad-tolerance", ("iso_macs.tolerance: 2 is not a number in (0, 0.5]",),
         add("iso_macs: {tolerance: 2}")),
    Case("empty-grid", ("variants.grid: empty grid", "give at least one key"),
         swap("  one_factor:\n" + VARIANT, "  grid: {}")),
    Case("duplicate-variants", ("variants.one_factor[1]: duplicate variant",
                                "the same run as 'conv5x5=5x5'"),
         swap(VARIANT, VARIANT + "\n" + VARIANT)),
    Case("variant-is-the-baseline", ("variants.one_factor[0]: the same as the baseline",),
         swap(VARIANT, "    - {conv5x5: 3x3x2}")),
    Case("name-is-not-the-file-name", ("name: 'other' must equal the file name 'bad'",),
         swap("name: bad", "name: other")),
    Case("missing-dataset-path", ("/nonexistent-archlab: no such directory",
                                  "imagefolder:/nonexistent-archlab"),
         swap('"synthetic:64"', '"imagefolder:/nonexistent-archlab"')),
    Case("corrupt-dataset-file", ("train-images-idx3-ubyte: truncated", "expected at least 16"),
         truncated_idx),
    Case("set-without-equals", ("--set 'epochs': must look like key=value",),
         args=("--set", "epochs")),
    Case("set-unknown-key", ("--set 'colour=red': unknown key 'colour'", "valid: conv5x5"),
         args=("--set", "colour=red")),
    Case("set-bad-number", ("--set epochs='ten' is invalid", "allowed: a number"),
         args=("--set", "epochs=ten")),
    Case("set-bad-option",
         ("--set: conv5x5='9x9' is not an option", "valid: 3x3x2, 3x3x2_sqrt, 5x5, 1x5_5x1"),
         args=("--set", "conv5x5=9x9")),
    Case("set-bad-seeds", ("--set 'seeds=abc'", "seeds=N or seeds=[0,1,2]"),
         args=("--set", "seeds=abc")),
    Case("seeds-too-many", ("seeds: 1000000 seeds: allowed 1 to 100,000",),
         add("seeds: 1000000")),
    Case("seed-too-large", ("seeds[1]: seed 100000 is not an integer in [0, 100,000)",),
         add("seeds: [0, 100000]")),
    Case("scale-max-seeds-zero", ("scales.smoke.max_seeds: 0 is not an integer in [1, 100,000]",),
         swap("threads: 1}", "threads: 1, max_seeds: 0}")),
    Case("scale-sequential-unknown",
         ("scales.smoke.sequential: 'bayes' is not a method", "valid: planned, anytime"),
         swap("threads: 1}", "threads: 1, sequential: bayes}")),
    Case("set-absurd-seeds", ("--set: seeds: 1000000000 seeds: allowed 1 to 100,000",),
         args=("--set", "seeds=1000000000")),
    Case("plan-over-1000-runs", ("this plan has 200,000 runs (more than 1,000)", "--yes"),
         args=("--set", "seeds=100000")),
    Case("until-decided-k-over-1000-runs", ("this plan has 1,200 runs", "--yes"),
         args=("--until-decided", "--max-seeds", "600")),
    Case("max-seeds-zero", ("--max-seeds 0: allowed 1 to 100,000",),
         args=("--until-decided", "--max-seeds", "0")),
    Case("budget-zero", ("--budget 0: need a number of minutes > 0",),
         args=("--until-decided", "--budget", "0")),
    Case("budget-without-until-decided", ("--budget is an option of --until-decided",),
         args=("--budget", "5")),
    Case("numerics-unknown", ("argument --numerics: invalid choice: 'fast'",),
         args=("--numerics", "fast")),
    Case("storage-unreachable", ("--storage postgresql://u:***@127.0.0.1:1/x: cannot open",
                                 "Connection refused"),
         args=("--storage", f"postgresql://u:{PASSWORD}@127.0.0.1:1/x"), hidden=(PASSWORD,)),
    Case("storage-unknown-driver", ("--storage nosuchdb://u:***@host/x: cannot open",),
         args=("--storage", f"nosuchdb://u:{PASSWORD}@host/x"), hidden=(PASSWORD,)),
    Case("unknown-scale", ("bad.yaml: scales: no scale 'huge'", "valid: smoke"),
         argv=("study", "run", "{file}", "--scale", "huge")),
    Case("jobs-zero", ("--jobs 0: need at least 1",), args=("--jobs", "0")),
    Case("jobs-not-a-number", ("argument --jobs: invalid int value: 'two'",),
         args=("--jobs", "two")),
    Case("tune-unknown-key", ("--tune 'speed': not tunable", "valid: lr, weight_decay"),
         args=("--tune", "speed")),
    Case("tune-zero-trials", ("--trials 0: need at least 1",),
         args=("--tune", "lr", "--trials", "0")),
    Case("missing-study-file", ("missing.yaml: no such study file",),
         argv=("study", "run", "{dir}/missing.yaml", "--scale", "smoke")),
    Case("directory-not-a-file", ("dir.yaml: is a directory",),
         argv=("study", "run", "{dir}/dir.yaml", "--scale", "smoke")),
    Case("unknown-study-name", ("no-such-study: no such study", "valid: "),
         argv=("study", "run", "no-such-study", "--scale", "smoke")),
    Case("report-of-unknown-study", ("nope: no results yet",), argv=("study", "report", "nope")),
    Case("status-of-unknown-study", ("nope: no results yet",), argv=("study", "status", "nope")),
]  # fmt: skip
# also run as real processes: the error handling of `python -m archlab.cli` itself
SUBPROCESS = ("malformed-yaml", "unknown-option", "storage-unreachable", "jobs-zero",
              "directory-not-a-file", "corrupt-dataset-file")  # fmt: skip


def _prepare(case: Case, tmp: Path) -> tuple[list[str], Path, Path]:
    """Write the (spoiled) study and a results/reports tree with content: (argv, roots)."""
    path = write_study(tmp / "studies", "bad")
    (tmp / "studies" / "dir.yaml").mkdir()
    if case.edit is not None:
        content = case.edit(path.read_text(), tmp)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    results, reports = tmp / "results", tmp / "reports"
    for root in (results, reports):  # earlier results that bad input must leave alone
        (root / "other").mkdir(parents=True)
        (root / "other" / "runs.csv").write_text("study,variant\nother,baseline\n")
    argv = case.argv or ("study", "run", "{file}", "--scale", "smoke", *case.args)
    argv = [a.format(file=path, dir=tmp / "studies") for a in argv]
    argv += ["--results", str(results)]
    if argv[1] != "status":
        argv += ["--reports", str(reports)]
    return argv, results, reports


def _check(case: Case, rc: int, out: str, err: str) -> None:
    assert rc == 2, (rc, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("archlab: error: ") and "Traceback" not in err
    for fragment in case.expect:
        assert fragment in lines[0], (fragment, lines[0])
    for secret in case.hidden:
        assert secret not in err


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, results, reports = _prepare(case, tmp_path)
    before = (tree(results), tree(reports))
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse errors
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    _check(case, rc, out, err)
    assert (tree(results), tree(reports)) == before  # no journal, no folder, no file


def test_bad_input_in_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    cases = [c for c in CASES if c.id in SUBPROCESS]
    assert len(cases) == len(SUBPROCESS)
    procs = []
    for case in cases:  # all at once: each process spends its time importing
        argv, results, reports = _prepare(case, tmp_path / case.id)
        before = (tree(results), tree(reports))
        p = subprocess.Popen(
            ARCHLAB + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
        )
        procs.append((case, p, before, results, reports))
    for case, p, before, results, reports in procs:
        out, err = p.communicate(timeout=180)
        _check(case, p.returncode, out, err)
        assert (tree(results), tree(reports)) == before
