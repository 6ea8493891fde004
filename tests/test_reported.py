"""Checks analysis/reported/ (the paper's numbers as tidy data) against the paper text.

Tests that read the paper SKIP when ../shared/paper (relative to the repository root)
is absent; the structural tests always run.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from analysis import reported  # noqa: E402

PAPER_DIR = REPO.parent / "shared" / "paper"

# Printed data rows per table, counted by hand from the paper (independent of tables.csv).
HAND_COUNTED_ROWS = {
    1: 9, 2: 2, 3: 1, 4: 4, 5: 4, 6: 1, 7: 1, 8: 9,
    9: 27, 10: 27, 11: 11, 12: 19, 13: 20, 14: 20, 15: 20, 16: 21,
    17: 20, 18: 20, 19: 20, 20: 20, 21: 20, 22: 20, 23: 20, 24: 20, 25: 20,
}

# Hand-picked spot checks: (table, {key: value}, metric, printed text). Each must match
# exactly one record, whose value_text equals the printed text and whose value equals it
# as a number, and the printed text must be in the table's printed row in the paper.
SPOT = [
    (1, {"optimizer": "Baseline"}, "f1", "90.395"),
    (1, {"batch_size": 32768}, "f1", "91.475"),
    (1, {"batch_size": "64k/32k"}, "steps", "8599"),
    (1, {"batch_size": 4096}, "time_hours", "693.6m"),
    (2, {"optimizer": "LARS", "batch_size": 16384}, "f1", "89.589"),
    (2, {"optimizer": "LARS", "batch_size": 32768}, "f1", "diverge"),
    (2, {"optimizer": "LAMB", "batch_size": 2048}, "f1", "91.946"),
    (3, {"optimizer": "Adagrad"}, "top1_accuracy", "0.5538"),
    (3, {"optimizer": "AdamW+"}, "top1_accuracy", "0.7307"),
    (3, {"optimizer": "Momentum"}, "top1_accuracy", "0.7520"),
    (3, {"optimizer": "LAMB"}, "top1_accuracy", "0.7666"),
    (4, {"batch_size": 512}, "exact_match", "85.090"),
    (4, {"batch_size": 32768}, "f1", "91.475"),
    (4, {"batch_size": 1024}, "learning_rate", r"$\frac{5}{2^{2.5} \times 10^3}$"),
    (4, {"batch_size": 16384}, "warmup_ratio", r"$\frac{1}{10}$"),
    (5, {"batch_size": 2048}, "top1_accuracy", "0.7711"),
    (5, {"batch_size": 32768}, "top5_accuracy", "0.9308"),
    (5, {"batch_size": 8192}, "warmup_epochs", "5"),
    (6, {"optimizer": "LAMB"}, "test_accuracy", "0.9408"),
    (6, {"optimizer": "Adagrad"}, "test_accuracy", "0.9074"),
    (6, {"optimizer": "Momentum"}, "test_accuracy", "0.9372"),
    (7, {"optimizer": "Adagrad"}, "test_accuracy", "0.9928"),
    (7, {"optimizer": "AdamW"}, "test_accuracy", "0.9941"),
    (7, {"optimizer": "LAMB"}, "test_accuracy", "0.9945"),
    (8, {"row": 0}, "f1", "diverged"),
    (8, {"row": 4}, "f1", "88.540"),
    (8, {"row": 5}, "last_step", "step=20000"),
    (8, {"row": 7}, "last_loss", "loss=1.15500"),
    (9, {"learning_rate_text": "0.0001"}, "top1_accuracy", "0.0026855469"),
    (9, {"learning_rate_text": "0.400"}, "top1_accuracy", "0.553833"),
    (9, {"learning_rate_text": "50.00"}, "top1_accuracy", "0.0009969076"),
    (10, {"learning_rate_text": "14.00"}, "top1_accuracy", "0.72007245"),
    (10, {"learning_rate_text": "0.010"}, "top1_accuracy", "0.029012045"),
    (10, {"learning_rate_text": "50.00"}, "top1_accuracy", "0.67976886"),
    (11, {"learning_rate_text": "0.001"}, "top1_accuracy", "0.6604"),
    (11, {"learning_rate_text": "0.0001"}, "top1_accuracy", "0.5521"),
    (11, {"learning_rate_text": "0.010"}, "top1_accuracy", "0.3673"),
    (12, {"learning_rate_text": "0.002"}, "top1_accuracy", "0.73476154"),
    (12, {"learning_rate_text": "0.014"}, "top1_accuracy", "0.6993001"),
    (12, {"learning_rate_text": "0.100"}, "top1_accuracy", "0.40297446"),
    (13, {"learning_rate_text": "0.0002"}, "top1_accuracy", "0.5542806"),
    (13, {"learning_rate_text": "0.006"}, "top1_accuracy", "0.122924805"),
    (13, {"learning_rate_text": "0.050"}, "top1_accuracy", "0.003540039"),
    (14, {"learning_rate_text": "0.0002"}, "top1_accuracy", "0.56514484"),
    (14, {"learning_rate_text": "0.020"}, "top1_accuracy", "0.0102335615"),
    (14, {"learning_rate_text": "0.050"}, "top1_accuracy", "0.0037638347"),
    (15, {"row": 0}, "top1_accuracy", "0.21142578"),
    (15, {"row": 1}, "top1_accuracy", "0.4289144"),
    (15, {"learning_rate_text": "0.0002"}, "top1_accuracy", "0.13537598"),
    (15, {"learning_rate_text": "0.050"}, "top1_accuracy", "0.0009969076"),
    (16, {"row": 19}, "top1_accuracy", "0.0012817383"),
    (16, {"row": 20}, "top1_accuracy", "0.0012017303"),
    (16, {"learning_rate_text": "0.018"}, "top1_accuracy", "0.00061035156"),
    (17, {"learning_rate_text": "0.002"}, "top1_accuracy", "0.67266846"),
    (17, {"learning_rate_text": "0.0001"}, "top1_accuracy", "0.48917642"),
    (17, {"learning_rate_text": "0.040"}, "top1_accuracy", "0.55478925"),
    (18, {"learning_rate_text": "0.002"}, "top1_accuracy", "0.67244464"),
    (18, {"learning_rate_text": "0.025"}, "top1_accuracy", "0.655009"),
    (18, {"learning_rate_text": "0.050"}, "top1_accuracy", "0.5988159"),
    (19, {"learning_rate_text": "0.0002"}, "top1_accuracy", "0.0076293945"),
    (19, {"learning_rate_text": "0.010"}, "top1_accuracy", "0.619751"),
    (19, {"learning_rate_text": "0.050"}, "top1_accuracy", "0.5279134"),
    (20, {"learning_rate_text": "0.006"}, "top1_accuracy", "0.081441246"),
    (20, {"learning_rate_text": "0.0004"}, "top1_accuracy", "0.00095621747"),
    (20, {"learning_rate_text": "0.050"}, "top1_accuracy", "0.007710775"),
    (21, {"learning_rate_text": "0.0001", "weight_decay_text": "0.01"}, "top1_accuracy", "0.0009969076"),
    (21, {"learning_rate_text": "0.006", "weight_decay_text": "0.001"}, "top1_accuracy", "0.011881511"),
    (21, {"learning_rate_text": "0.008", "weight_decay_text": "0.001"}, "top1_accuracy", "0.0061442056"),
    (22, {"learning_rate_text": "0.002", "weight_decay_text": "0.0001"}, "top1_accuracy", "0.73065186"),
    (22, {"learning_rate_text": "0.0004", "weight_decay_text": "0.00001"}, "top1_accuracy", "0.6773885"),
    (22, {"learning_rate_text": "0.008", "weight_decay_text": "0.00001"}, "top1_accuracy", "0.31193033"),
    (23, {"learning_rate_text": "0.008", "weight_decay_text": "0.001"}, "top1_accuracy", "0.1329956"),
    (23, {"learning_rate_text": "0.0001", "weight_decay_text": "0.01"}, "top1_accuracy", "0.0010172526"),
    (23, {"learning_rate_text": "0.002", "weight_decay_text": "0.001"}, "top1_accuracy", "0.0010579427"),
    (24, {"learning_rate_text": "0.008"}, "top1_accuracy", "0.7223918"),
    (24, {"learning_rate_text": "0.0001"}, "top1_accuracy", "0.28515625"),
    (24, {"learning_rate_text": "0.050"}, "top1_accuracy", "0.70284015"),
    (25, {"learning_rate_text": "0.014"}, "top1_accuracy", "0.7109375"),
    (25, {"learning_rate_text": "0.0001"}, "top1_accuracy", "0.31247965"),
    (25, {"learning_rate_text": "0.050"}, "top1_accuracy", "0.6971232"),
]

# Wide tables: printed row label -> metric (for checking each record against its printed row).
WIDE_ROW_LABELS = {
    2: {"Lars": "f1", "LAMB": "f1"},
    3: {"Accuracy": "top1_accuracy"},
    4: {"Learning Rate": "learning_rate", "Warmup Ratio": "warmup_ratio", "F1 score": "f1", "Exact Match": "exact_match"},
    5: {"Learning Rate": "learning_rate", "Warmup Epochs": "warmup_epochs",
        "Top-5 Accuracy": "top5_accuracy", "Top-1 Accuracy": "top1_accuracy"},
    6: {"Test Accuracy": "test_accuracy"},
    7: {"Average accuracy over 5 runs": "test_accuracy"},
}
# Long tables: metric -> printed column index.
LONG_METRIC_COL = {
    1: {"steps": 2, "f1": 3, "time_hours": 5},
    8: {"last_loss": 4, "last_step": 4, "f1": 5},
}
# Lines the PDF extraction left inside Tables 14, 16 and 18 (not data).
ARTIFACT = re.compile(r"^t al\., 2017\)\.")


# ----------------------------------------------------------------------------- helpers
def _paper_text() -> str | None:
    if not PAPER_DIR.is_dir():
        return None
    files = sorted(PAPER_DIR.glob("*.txt"))
    if not files:
        return None
    return files[0].read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def paper() -> str:
    text = _paper_text()
    if text is None:
        pytest.skip(f"paper text not found under {PAPER_DIR}")
    return text


def _blocks(text: str) -> dict[int, tuple[list[str], list[list[str]]]]:
    """Table number -> (header cells, printed data rows as cells), from the paper text."""
    lines = text.split("\n")
    caption = {}
    for i, ln in enumerate(lines):
        m = re.match(r"Table (\d+):", ln)
        if m:
            caption[int(m.group(1))] = i
    out = {}
    for t in reported.TABLES:
        end = caption.get(t + 1, len(lines))
        tab = [ln.split("\t") for ln in lines[caption[t] + 1:end] if "\t" in ln and not ARTIFACT.match(ln)]
        out[t] = (tab[0], tab[1:])
    return out


@pytest.fixture(scope="module")
def printed(paper):
    return _blocks(paper)


def _num(text: str) -> float:
    """The number a printed cell stands for (same rules as the CSVs)."""
    m = re.fullmatch(r"\$\\frac\{(\d+)\}\{2\^\{([\d.]+)\} \\times (10\^3|100)\}\$", text)
    if m:
        return int(m.group(1)) / (2 ** float(m.group(2)) * (1000 if m.group(3) == "10^3" else 100))
    m = re.fullmatch(r"\$\\frac\{(\d+)\}\{(\d+)\}\$", text)
    if m:
        return int(m.group(1)) / int(m.group(2))
    m = re.fullmatch(r"([\d.]+)([hm])", text)
    if m:
        return float(m.group(1)) / (60.0 if m.group(2) == "m" else 1.0)
    m = re.fullmatch(r"(\d+)k", text)
    if m:
        return float(int(m.group(1)) * 1000)
    m = re.fullmatch(r"(?:loss|step)=([\d.]+)", text)
    if m:
        return float(m.group(1))
    return float(text)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


# ----------------------------------------------------------------- structural tests
def test_every_table_present_with_row_count():
    meta = reported.tables().set_index("table")
    assert list(meta.index) == list(reported.TABLES)
    for t in reported.TABLES:
        df = reported.load(t)
        assert len(df) > 0, t
        assert (df["table"] == t).all()
        rows = sorted(df["row"].unique())
        assert rows == list(range(meta.loc[t, "row_count"])), t
        assert meta.loc[t, "row_count"] == HAND_COUNTED_ROWS[t], t


def test_hand_counted_tables():
    # a few done once more by hand, explicitly
    assert reported.load(1)["row"].nunique() == 9
    assert reported.load(9)["row"].nunique() == 27
    assert reported.load(12)["row"].nunique() == 19
    assert reported.load(16)["row"].nunique() == 21  # 0.050 printed twice
    assert reported.load(25)["row"].nunique() == 20
    assert len(reported.load(3)) == 8  # 5 columns, three of them "x/x+"
    assert len(reported.load(4)) == 28
    assert len(reported.load(8)) == 27


def test_status_and_values():
    df = reported.load_all()
    assert set(df["status"]) <= set(reported.STATUSES)
    ok = df["status"] == "ok"
    assert df.loc[ok, "value"].notna().all()
    assert df.loc[~ok, "value"].isna().all()
    assert (df.loc[~ok, "value_text"] == df.loc[~ok, "status"]).all()
    assert set(df.loc[~ok, "table"]) == {2, 8}
    for _, r in df[ok].iterrows():
        assert _close(r["value"], _num(r["value_text"])), (r["table"], r["row"], r["metric"], r["value_text"])


def test_keys_unique_and_typed():
    keys = [c for c in reported.COLUMNS if c not in ("value", "status", "value_text", "note")]
    for t in reported.TABLES:
        df = reported.load(t)
        k = [c for c in keys if c in df.columns]
        assert not df.duplicated(subset=k).any(), t
        assert df["value"].dtype == "float64"
        if t != 1:
            assert df["batch_size"].dtype == "int64", t
    t1 = reported.load(1)
    mixed = t1["row"] == 8
    assert (t1.loc[mixed, "batch_size"] == "64k/32k").all()
    assert all(isinstance(b, int) for b in t1.loc[~mixed, "batch_size"])
    assert sorted(set(reported.load(2)["batch_size"])) == [512 * 2**i for i in range(7)]
    for t in range(9, 26):
        df = reported.load(t)
        assert (df["batch_size"] == 16384).all() and (df["epochs"] == 90).all() and (df["steps"] == 7038).all()
        assert (df["metric"] == "top1_accuracy").all()
        if t >= 13:
            assert set(df["l2_regularization"]) <= {"default (0.01)", "disable"}


def test_imagenet_optimizer_variants():
    expect = {9: "Adagrad", 10: "Adagrad+", 11: "Adam", 12: "Adam+"}
    expect.update({t: "AdamW" for t in range(13, 21)})
    expect.update({t: "AdamW+" for t in range(21, 26)})
    for t, opt in expect.items():
        assert set(reported.load(t)["optimizer"]) == {opt}, t
    l2 = {t: ("default (0.01)" if t in (13, 14, 15, 16, 21, 22) else "disable") for t in range(13, 26)}
    for t, v in l2.items():
        assert set(reported.load(t)["l2_regularization"]) == {v}, t


def test_defaults():
    d = reported.defaults().set_index(["setting", "parameter"])["value"]
    assert d[("LAMB", "weight_decay")] == 0.01
    assert d[("LAMB", "beta1")] == 0.9
    assert d[("LAMB", "beta2")] == 0.999
    assert d[("LAMB", "epsilon")] == 1e-6
    assert d[("N-LAMB", "beta1")] == 0.975
    assert d[("N-LAMB", "beta2")] == 0.999
    assert d[("N-LAMB", "epsilon")] == 1e-8


def test_figures_numbers():
    f = reported.figures()
    assert list(f.columns) == ["figure", "quantity", "value", "value_text", "note"]
    v = f.set_index(["figure", "quantity"])["value"]
    assert v[("Figure 8", "scaling_efficiency_percent")] == 76.8
    assert v[("Figure 8", "speedup_x")] == 49
    assert v[("Figure 8", "mixed_batch_scaling_efficiency_percent")] == 101.8
    assert v[("Figure 8", "mixed_batch_speedup_x")] == 65.2
    assert v[("Section 4.1", "scaling_efficiency_percent")] == 76.7
    assert v[("Section 4.1", "mixed_batch_scaling_efficiency_percent")] == 100.2


def test_analysis_does_not_import_jax():
    code = "import sys; import analysis.reported as r; r.load_all(); assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# ------------------------------------------------------------ against the paper text
def test_printed_row_counts(printed):
    meta = reported.tables().set_index("table")["row_count"]
    for t in reported.TABLES:
        assert len(printed[t][1]) == meta[t] == HAND_COUNTED_ROWS[t], t


@pytest.mark.parametrize("table,keys,metric,text", SPOT)
def test_spot_values(printed, table, keys, metric, text):
    df = reported.load(table)
    sel = df["metric"] == metric
    for k, v in keys.items():
        sel &= df[k].map(lambda x, v=v: x == v)
    hit = df[sel]
    assert len(hit) == 1, (table, keys, metric)
    r = hit.iloc[0]
    assert r["value_text"] == text
    if r["status"] == "ok":
        assert _close(r["value"], _num(text))
    header, rows = printed[table]
    line = rows[r["row"]]
    assert any(text == c or text in c.replace(", ", "/").split("/") for c in line), (table, line)


def test_every_record_matches_its_printed_row(printed):
    """All records, not only the spot checks: value_text and keys sit in the printed row."""
    for t in reported.TABLES:
        header, rows = printed[t]
        df = reported.load(t)
        for _, r in df.iterrows():
            cells = rows[r["row"]]
            where = (t, r["row"], r["metric"])
            if t in WIDE_ROW_LABELS:
                assert WIDE_ROW_LABELS[t][cells[0]] == r["metric"], where
                if t in (2, 4, 5):
                    col = header.index(r["batch_size_text"])
                    assert cells[col] == r["value_text"], where
                    if t == 2:
                        assert cells[0] == r["optimizer_text"], where
                    else:
                        assert rows[0][col] == r["learning_rate_text"], where
                        assert rows[1][col] == r["warmup_text"], where
                else:
                    col = next(i for i, h in enumerate(header) if r["optimizer_text"] in h.split("/"))
                    j = header[col].split("/").index(r["optimizer_text"])
                    assert cells[col].split("/")[j] == r["value_text"], where
            elif t in LONG_METRIC_COL:
                cell = cells[LONG_METRIC_COL[t][r["metric"]]]
                assert r["value_text"] == cell or r["value_text"] in cell.split(", "), where
                assert cells[0] == r["optimizer_text"] and cells[1] == r["batch_size_text"], where
                if t == 1:
                    assert int(cells[4]) == r["tpus"], where
                else:
                    assert cells[2] == r["warmup_text"] and cells[3] == r["learning_rate_text"], where
            else:
                expect = [r["learning_rate_text"]]
                if t >= 13:
                    expect += [r["weight_decay_text"], r["l2_regularization"]]
                assert cells == expect + [r["value_text"]], where


def test_figures_value_text_in_paper(paper):
    for _, r in reported.figures().iterrows():
        assert r["value_text"] in paper, (r["figure"], r["quantity"], r["value_text"])


def test_defaults_in_paper(paper):
    for s in ("weight decay rate λ =0.01", "β_1 =0.9", "β_2 =0.999", "ϵ =1e-6",
              r"$\beta_1 = 0.975$", r"$\beta_2 = 0.999$", r"$\epsilon = 1e-8$"):
        assert s in paper, s


def test_every_printed_cell_has_a_record(printed):
    """Completeness: the number of records equals the number of printed value cells."""
    for t in reported.TABLES:
        header, rows = printed[t]
        if t in WIDE_ROW_LABELS:
            expected = sum(len(c.split("/")) for r in rows for c in r[1:])
        elif t == 1:
            expected = 3 * len(rows)  # steps, F1, time (TPUs is a key)
        elif t == 8:
            expected = 3 * len(rows)  # last loss, last step, F1
        else:
            expected = len(rows)
        assert len(reported.load(t)) == expected, t


def test_nado2021_numbers_name_their_source_and_match_their_text():
  """The later-evidence numbers are data with a source each, never presented as the paper's."""
  frame = reported.nado2021()
  assert len(frame) and frame.source.str.len().min() > 10
  for _, row in frame[frame.value.notna()].iterrows():
    printed = float(row.value_text.replace(",", "").rstrip("%").rstrip("k") or "nan")
    assert printed in (row.value, row.value / 1024), row.to_dict()


def test_the_literatures_critical_batch_is_cited_and_places_the_papers_ladders():
  """Every row names its source; a value comes with the words it was read from; a task
  without a published value is said to be unplaced, never given a number."""
  from analysis import critical_batch  # pylint: disable=import-outside-toplevel
  frame = reported.critical_batch()
  assert set(frame.paper_ladder) == {"table4", "table5"}
  for _, row in frame.iterrows():
    assert row.source
    assert pd.isna(row.batch_low) == pd.isna(row.batch_high) == (not row.quote)
  imagenet = frame.set_index("task").loc["imagenet_resnet50"]
  assert (imagenet.batch_low, imagenet.batch_high) == (10000, 100000)
  assert "tens of thousands in ImageNet" in imagenet.quote
  lines = "\n".join(critical_batch.paper_ladders())
  assert "Table 5's ladder (512-32,768 images)" in lines and "0.33-3.3x" in lines
  assert "no rung is far beyond it" in lines
  assert "Table 4's ladder (512-32,768 sequences): not placed" in lines
