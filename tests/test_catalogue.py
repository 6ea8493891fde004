"""The catalogue is the one place that spells an experiment's name: the analysis reads every name
from `analysis.catalogue`, every experiment it names has a config, and every claim says what it
reads."""
from __future__ import annotations

import ast
from pathlib import Path

from analysis import catalogue, claims, figures, tables
from analysis.catalogue import E

ROOT = Path(__file__).resolve().parents[1]
ANALYSIS = ROOT / "analysis"

# The registries of the command line name artefacts (`python -m analysis.tables table7`), not
# experiments: their keys, and the table and figure functions `__all__` exports, may coincide
# with an experiment's name. Only there: (file, the assigned name whose strings may).
ARTEFACT_NAMES = {("analysis/tables/__init__.py", "TABLES"),
                  ("analysis/tables/__init__.py", "__all__"),
                  ("analysis/figures/__init__.py", "FIGURES"),
                  ("analysis/figures/__init__.py", "__all__")}
# Names still spelled out where they should read the catalogue: (file, name) -> what to change.
# The test fails when one is no longer there, so that the entry goes with it.
NOT_YET: dict = {}  # (file, name) -> why it is still spelled out; empty: none is
# Experiments with no config of their own: Figure 8 is drawn from the paper's Table 1 times and
# the cost model; no run of ours enters it.
NO_CONFIG = {E.FIGURE8}


def _artefact_strings(tree: ast.Module, path: str) -> set:
  """The ids of the string nodes `ARTEFACT_NAMES` allows in one file: the keys of a registry
  dictionary, the entries of `__all__`."""
  allowed = set()
  for node in tree.body:
    if not isinstance(node, ast.Assign):
      continue
    names = {t.id for t in node.targets if isinstance(t, ast.Name)}
    if not any((path, name) in ARTEFACT_NAMES for name in names):
      continue
    if isinstance(node.value, ast.Dict):
      allowed |= {id(k) for k in node.value.keys if k is not None}
    elif isinstance(node.value, (ast.List, ast.Tuple)):
      allowed |= {id(e) for e in node.value.elts}
  return allowed


def _spelled_names(root: Path = ROOT) -> list:
  """(file, line, name) of every string constant equal to an experiment name in the `analysis`
  package under `root`, outside the catalogue and the artefact registries."""
  known = set(catalogue.experiments())
  found = []
  for file in sorted((root / "analysis").rglob("*.py")):
    path = file.relative_to(root).as_posix()
    if path == "analysis/catalogue.py":
      continue
    tree = ast.parse(file.read_text(), filename=path)
    allowed = _artefact_strings(tree, path)
    found += [(path, node.lineno, node.value) for node in ast.walk(tree)
              if isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value in known and id(node) not in allowed]
  return found


def test_only_the_catalogue_spells_an_experiment_name():
  found = _spelled_names()
  spelled = [f"{path}:{line}: {name!r}" for path, line, name in found
             if (path, name) not in NOT_YET]
  assert not spelled, "use analysis.catalogue.E (or TUNING_GRID) instead:\n" + "\n".join(spelled)
  gone = set(NOT_YET) - {(path, name) for path, _, name in found}
  assert not gone, f"no longer spelled out, drop from NOT_YET: {sorted(gone)}"


def test_the_scan_finds_a_spelled_name(tmp_path):
  """The scan above is not vacuous: a literal name in a module of the package is reported with
  its file and line, one in a registry's keys is not."""
  package = tmp_path / "analysis"
  (package / "tables").mkdir(parents=True)
  (package / "catalogue.py").write_text(f"X = {E.TABLE7!r}\n")
  (package / "tables" / "__init__.py").write_text(
      f'"""Table 7: {E.TABLE7}."""\nTABLES = {{{E.TABLE7!r}: None}}\n')
  (package / "module.py").write_text(
      f"def f(e):\n  return f'{{e}} {E.TABLE7}'\n\nRUNS = f({E.TABLE7!r})\n")
  assert _spelled_names(tmp_path) == [("analysis/module.py", 4, E.TABLE7)]


def test_catalogue_reads_nothing_of_the_analysis():
  """The analysis imports the catalogue, so the catalogue imports none of it (no cycle)."""
  tree = ast.parse((ANALYSIS / "catalogue.py").read_text())
  imported = [n.module if isinstance(n, ast.ImportFrom) else a.name
              for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
              for a in n.names]
  assert not [m for m in imported if m and m.split(".")[0] == "analysis"], imported


def test_every_experiment_has_a_config():
  configs = ROOT / "experiments" / "configs"
  missing = [e for e in catalogue.experiments()
             if e not in NO_CONFIG and not (configs / f"{e}.py").exists()]
  assert not missing, f"experiments with no experiments/configs/<name>.py: {missing}"
  # NO_CONFIG stays what it says: an experiment that gains a config leaves it.
  assert not [e for e in NO_CONFIG if (configs / f"{e}.py").exists()]
  assert NO_CONFIG <= set(catalogue.experiments())


def test_every_claim_says_what_it_reads():
  ids = [c.id for c in claims.CLAIMS]
  assert len(ids) == len(set(ids))
  assert set(ids) == set(catalogue.CLAIM_READS), (
      f"claims without reads: {sorted(set(ids) - set(catalogue.CLAIM_READS))}; reads of no "
      f"claim: {sorted(set(catalogue.CLAIM_READS) - set(ids))}")
  known = set(catalogue.experiments())
  assert all(set(reads) <= known for reads in catalogue.CLAIM_READS.values())


def test_reads_name_the_command_line_artefacts():
  """Every table the command line draws has its reads; every figure with reads is drawn."""
  assert set(catalogue.TABLE_READS) == set(tables.TABLES)
  assert set(catalogue.FIGURE_READS) <= set(figures.FIGURES)
  known = set(catalogue.experiments())
  for reads in (*catalogue.TABLE_READS.values(), *catalogue.FIGURE_READS.values()):
    assert set(reads) <= known, reads


def test_no_analysis_module_is_over_600_lines():
  """One experiment's logic in one place: small modules by layer and by task."""
  long = {str(p.relative_to(ROOT)): n for p in (ROOT / "analysis").rglob("*.py")
          if (n := len(p.read_text().splitlines())) > 600}
  assert not long, long
