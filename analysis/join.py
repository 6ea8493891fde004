"""Whether each run folder is the run its files say it is: the loader's integrity checks.

Every verdict of the report (the paper's optimizer comparisons at each batch size, its tuned
rows of Tables 3-25) is read off a choice among run folders; a folder that holds a copy, a renamed run or
hand-edited numbers would put a number in a table that no training produced, or count one run
twice as two seeds. These checks give such a folder a status that keeps it out of every choice
(`vocabulary.BLOCKING`), and an error naming what disagrees and how to go on:

- ``misplaced``: its config.json or summary.json names another experiment or scale than the
  folders it sits in.
- ``renamed``: its folder name differs from the ``run`` its summary.json records (a ``cp -a``
  backup such as ``lamb_lr0.01_seed0.bak``, or a ``mv``).
- ``duplicate``: two or more folders of one experiment and scale hold the same run: configs
  equal as the runner identifies runs (`experiments.sweep.fingerprint`: the config as canonical
  JSON, seed included, minus the keys that describe the grid rather than the run). Each is
  named with the others.
- ``edited``: the run's own records disagree with its summary: (i) summary.json's ``final``
  numbers against the evaluation record metrics.jsonl holds at the final step (every numeric key
  both have, relative tolerance 1e-9); (ii) the ``config_sha256`` summary.json records against
  config.json as it is now; (iii) the mean of eval_examples.npz's per-unit records against the
  summary's ``final.<metric>`` (1e-6), its unit count against ``final.eval_units`` and its step
  against the summary's ``steps``.

summary.json's ``config_sha256`` (`CONFIG_SHA256`) is the lowercase hex sha256 of the exact bytes
of config.json as the run wrote it: ``hashlib.sha256(config_path.read_bytes()).hexdigest()``
(`config_sha256`), taken from the file after it is written, so that any later edit, even of
whitespace, shows. Runs written before the field existed are not errors: their row says
``config_unchecked`` (True), so the report can say how many runs predate the check.

A damaged eval_examples.npz makes the run ``unreadable``, as any damaged results file does.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Optional

import numpy as np

from analysis import manifest
from analysis import vocabulary as vocab
from experiments import sweep  # pure Python, no jax: the runner's own notion of "the same run"
from lamb.train import results  # file formats only: no jax

CONFIG_SHA256 = "config_sha256"  # summary.json: sha256 hex digest of config.json's bytes
FINAL_RTOL = 1e-9     # summary's final against the metrics' record: both are the same floats
RECORDS_ATOL = 1e-6   # eval_examples.npz's mean against the summary: float rounding only
# The summary prints these metrics in percent (SQuAD's official script); the records hold [0, 1].
PERCENT = ("f1", "exact_match")
# The per-example records' file (lamb.train.results names it too, once it writes it).
EVAL_EXAMPLES = results.EVAL_EXAMPLES
# Which status a row shows when several checks fail (its error says all of them).
ORDER = (vocab.UNREADABLE, vocab.MISPLACED, vocab.RENAMED, vocab.DUPLICATE, vocab.EDITED)


def config_sha256(config_path: Path | str) -> str:
  """The value of summary.json's `config_sha256` for a config.json as it is on disk."""
  return hashlib.sha256(Path(config_path).read_bytes()).hexdigest()


def misplaced(run_dir: Path, config: dict, summary: dict) -> str:
  """Why the run's own files say it belongs elsewhere ('' when they agree with its folder): a
  run copied into another experiment's or scale's folder must not count there."""
  where = {"experiment": run_dir.parent.parent.name, "scale": run_dir.parent.name}
  said = {"experiment": [config.get("name"), summary.get("experiment")],
          "scale": [config.get("scale"), summary.get("scale")]}
  for key, values in said.items():
    for value in values:
      if value is not None and value != where[key]:
        return (f"its files say {key} {value!r}, but it sits in the folder of {key} "
                f"{where[key]!r}; move it back or remove it")
  return ""


def renamed(run_dir: Path, summary: dict) -> str:
  """Why the folder is not the run its summary names ('' when it is, or the summary does not
  say): a backup copy or a moved run would otherwise stand for a run of another name."""
  recorded = summary.get("run")
  if not isinstance(recorded, str) or recorded == run_dir.name:
    return ""
  return (f"its summary.json records run {recorded!r}, but its folder is {run_dir.name!r}; "
          f"move it back (to {run_dir.parent / recorded}) or remove it")


def fingerprint(config: dict) -> Optional[str]:
  """What makes two configs the same run (None when there is no config to compare)."""
  if not config:
    return None
  try:
    return sweep.fingerprint(config)
  except (TypeError, ValueError):  # a config.json no runner wrote: nothing to compare
    return None


def duplicates(rows: list, fingerprints: list) -> None:
  """Marks every row whose run appears in more than one folder of its experiment and scale,
  naming the others (in place)."""
  groups: dict = {}
  for i, (row, fp) in enumerate(zip(rows, fingerprints)):
    if fp is not None:
      groups.setdefault((row["experiment"], row["scale"], fp), []).append(i)
  for members in groups.values():
    if len(members) < 2:
      continue
    for i in members:
      others = [rows[j]["run"] for j in members if j != i]
      mark(rows[i], vocab.DUPLICATE,
           f"the same run (same config, seed included) as {', '.join(others)} in "
           f"{Path(rows[i]['path']).parent}; keep one folder and remove the others")


def mark(row: dict, status: str, why: str) -> None:
  """Adds an integrity finding to `row`: the status of the gravest finding, every reason in the
  error."""
  current, error = row["status"], row.get("error")
  if current in ORDER:  # a finding already: the gravest shows, the error says each
    row["error"] = f"{error}; also {status}: {why}"
    if ORDER.index(status) < ORDER.index(current):
      row["status"] = status
  else:  # the runner's own error (a failed run's) stays after the finding
    row["status"], row["error"] = status, f"{why} (the runner said: {error})" if error else why


def _differs(a, b, rtol: float) -> bool:
  a, b = float(a), float(b)
  if math.isnan(a) or math.isnan(b):
    return math.isnan(a) != math.isnan(b)
  return not math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def final_against_metrics(summary: dict, records: Optional[list]) -> str:
  """Where summary.json's `final` disagrees with the evaluation metrics.jsonl logged at the
  final step ('' when they agree, or there is nothing to compare)."""
  final = summary.get("final")
  evals = [r for r in records or () if r.get("split") == "eval"]
  if not isinstance(final, dict) or not final or not evals:
    return ""
  step = summary.get("steps")
  step = step if _number(step) else evals[-1].get("step")
  at = [r for r in evals if r.get("step") == step]
  if not at:
    return (f"summary.json reports a final evaluation at step {step}, but metrics.jsonl has none "
            f"there (its last at step {evals[-1].get('step')})")
  record = at[-1]
  keys = [k for k in final if _number(final[k]) and _number(record.get(k))
          and _differs(final[k], record[k], FINAL_RTOL)]
  if not keys:
    return ""
  said = ", ".join(f"{k} {final[k]!r} against {record[k]!r}" for k in keys)
  return f"summary.json's final disagrees with metrics.jsonl's evaluation at step {step}: {said}"


def config_against_summary(config_path: Path, summary: dict) -> tuple:
  """(why config.json is not the one the run recorded or '', whether there was nothing to check
  it against)."""
  recorded = summary.get(CONFIG_SHA256)
  if not isinstance(recorded, str):
    return "", True
  try:
    now = config_sha256(config_path)
  except OSError:
    return "", True
  if now == recorded:
    return "", False
  return (f"config.json's sha256 is {now[:12]}..., but summary.json records {recorded[:12]}... "
          f"for the config the run trained; restore the config or rerun the run"), False


def records_against_summary(run_dir: Path, summary: dict) -> tuple:
  """(why eval_examples.npz disagrees with summary.json or '', why it cannot be read or '')."""
  try:
    records = results.read_eval_examples(run_dir / EVAL_EXAMPLES)
  except results.UnreadableError as e:
    return "", str(e)
  final = summary.get("final")
  if records is None or not isinstance(final, dict):
    return "", ""
  metric = records.get("metric") or ("f1" if "score" in records else "accuracy")
  per_unit = records.get("score") if "score" in records else records.get("correct")
  problems = []
  if per_unit is not None and len(per_unit) and _number(final.get(metric)):
    mean = float(np.mean(np.asarray(per_unit, dtype=np.float64)))
    scale = 100.0 if metric in PERCENT else 1.0
    if abs(mean * scale - final[metric]) > RECORDS_ATOL * scale:
      problems.append(f"its mean {metric} {mean * scale:.6g} against summary.json's "
                      f"{final[metric]:.6g}")
  n = len(records["index"]) if "index" in records else None
  if n is not None and _number(final.get("eval_units")) and n != final["eval_units"]:
    problems.append(f"{n} units against summary.json's eval_units {final['eval_units']}")
  step = summary.get("steps")
  if _number(records.get("step")) and _number(step) and records["step"] != step:
    problems.append(f"step {records['step']} against summary.json's steps {step}")
  if not problems:
    return "", ""
  return f"{EVAL_EXAMPLES} disagrees with summary.json: {'; '.join(problems)}", ""


def check(row: dict, run_dir: Path, config: dict, summary: dict, records: Optional[list]) -> None:
  """Runs every per-folder check on a row read from readable files (in place); the duplicate
  check needs every folder and runs in `duplicates`."""
  why = misplaced(run_dir, config, summary)
  if why:
    mark(row, vocab.MISPLACED, why)
  why = renamed(run_dir, summary)
  if why:
    mark(row, vocab.RENAMED, why)
  edits = [final_against_metrics(summary, records)]
  why, row["config_unchecked"] = config_against_summary(run_dir / results.CONFIG, summary)
  edits.append(why)
  if row["config_unchecked"]:  # an older run: its committed fingerprints, where there are some
    why = manifest.differs(run_dir)
    row["config_unchecked"] = manifest.entry(run_dir) is None
    edits.append(why)
  why, unreadable = records_against_summary(run_dir, summary)
  if unreadable:
    mark(row, vocab.UNREADABLE, unreadable)
  edits.append(why)
  for why in edits:
    if why:
      mark(row, vocab.EDITED, why)
