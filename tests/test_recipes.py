"""docs/paper_scale.md, the paper-scale path's user guide, checked against the code it drives.

Every `python experiments/run.py` and `python experiments/write_pretraining_data.py` command in
the guide's code blocks is run the way a user would type it, with the guide's folders swapped
for empty temporary ones: a training or `--estimate` command as `--dry_run` (which compiles
nothing and reads no data), so its flags must exist and its config, overrides, `--target` and
`--only` must resolve; a writer command until it looks for the corpus, which only comes after
its flags and vocabulary were read. The recipes' bindings are checked too: the SLURM GPU job
leaves every GPU of a node visible to every task and plans micro-batches for its GPU count, the
TPU slice names a software version with a usable Python and the accelerator type its `--target`
prints, and the BERT commands agree on the data flags that name the instance folders.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT, cli_env

DOC = ROOT / "docs" / "paper_scale.md"
TEXT = DOC.read_text() if DOC.exists() else ""

# The guide's shell variables, as a user would set them (only where a value reaches a check).
SHELL_VALUES = {"SLURM_PROCID": "0", "SLURM_NTASKS": "64", "BUCKET": "bucket", "ZONE": "zone",
                "REPO": "repo"}
# Folders the guide names on a shared file system or a bucket; the checks use empty local ones.
FOLDER_FLAGS = ("data_dir", "results_dir", "checkpoint_dir")
# Cloud TPU software versions for JAX (cloud.google.com/tpu/docs/runtimes); `tpu-vm-base`, the
# old image, has Python 3.8 and cannot install jax 0.10.2.
TPU_SOFTWARE = ("tpu-ubuntu2204-base", "v2-alpha-tpuv5-lite", "v2-alpha-tpuv5", "v2-alpha-tpuv6e")
SCRIPTS = {"run": "run.py", "writer": "write_pretraining_data.py"}
# A command ends where the shell would end it: a quote closing the string it is part of, a
# separator, a redirection or a comment. The guide's commands use no quotes of their own.
COMMAND = re.compile(r"python\s+experiments/(run|write_pretraining_data)\.py\b([^\"';|&>#\n]*)")

# The SLURM recipe this guide replaced: per-task GPU binding, and ResNet-50 at 1,024 images per
# GPU with no memory plan. Its checks must fail on it.
OLD_SLURM = """sbatch --nodes=4 --ntasks-per-node=8 --gpus-per-task=1 --wrap="srun python \\
  experiments/run.py --config=table5:paper --only=32K --data_dir=/shared/tfds \\
  --results_dir=/shared/results"
"""
OLD_TPU = """gcloud compute tpus tpu-vm create lamb --zone=$ZONE --accelerator-type=v3-2048 \\
  --version=tpu-vm-base
gcloud compute tpus tpu-vm ssh lamb --zone=$ZONE --worker=all --command="cd lamb && \\
  python experiments/run.py --config=table4:paper --only=batch32K --target=tpu-v3-512"
"""


# --------------------------------------------------------------------------------------------
# Reading the guide


def code_blocks(text: str) -> list[str]:
  return re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)


def logical_lines(block: str) -> list[str]:
  """The block's lines with backslash continuations joined, as the shell reads them."""
  return re.sub(r"\\\n[ \t]*", " ", block).splitlines()


def with_shell_values(text: str) -> str:
  return re.sub(r"\$\{?(\w+)\}?", lambda m: SHELL_VALUES.get(m.group(1), m.group(0)), text)


def commands(text: str, script: str) -> list[tuple[str, list[str]]]:
  """[(the command as written, its arguments)] of every `script` command ("run" or "writer")
  in the code blocks of `text`."""
  found = []
  for block in code_blocks(text):
    for line in logical_lines(block):
      for match in COMMAND.finditer(line):
        if SCRIPTS[script].startswith(match.group(1)):
          written = " ".join(match.group(0).split())
          found.append((written, shlex.split(with_shell_values(match.group(2)))))
  return found


def flag_value(args: list[str], flag: str):
  """The value of the last `--flag=value` in `args`, or None."""
  values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{flag}=")]
  return values[-1] if values else None


def options(block: str) -> dict:
  """`--key=value` options of `#SBATCH` lines and `sbatch` / `gcloud` command lines."""
  return dict(re.findall(r"--([\w-]+)=(\S+)", " ".join(
      line for line in logical_lines(block)
      if line.lstrip().startswith(("#SBATCH", "sbatch", "gcloud")))))


RUN_COMMANDS = commands(TEXT, "run")
WRITER_COMMANDS = commands(TEXT, "writer")
# A flag run.py lacks, run beside the guide's commands: the check must name it.
MISSING_FLAG = (["--config=table4:paper", "--only=batch32K", "--no_such_flag=1"], "no_such_flag")


# --------------------------------------------------------------------------------------------
# Running the commands: one subprocess runs them all, in the checks' own folders


DRIVER = r"""
import contextlib, io, json, sys
from experiments import run, write_pretraining_data
out = []
for job in json.load(sys.stdin):
  sys.argv = job["argv"]  # ml_collections reads --config.* overrides from sys.argv
  stdout, stderr = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    try:
      rc = run.cli() if job["script"] == "run" else write_pretraining_data.main()
    except SystemExit as e:
      rc = e.code
  out.append({"rc": rc, "out": stdout.getvalue(), "err": stderr.getvalue()})
print("RESULTS " + json.dumps(out))
"""


def as_dry_run(args: list[str], folders: dict) -> list[str]:
  """A training or estimate command as its dry run, in the checks' folders."""
  out = [a for a in args if a not in ("--estimate", "--dry_run")
         and not a.startswith(tuple(f"--{f}=" for f in FOLDER_FLAGS))]
  out += [f"--{f}={folders[f]}" for f in FOLDER_FLAGS if flag_value(args, f) is not None]
  return ["run.py"] + out + ["--dry_run"]


def as_writer_check(args: list[str], folders: dict) -> list[str]:
  """A writer command in the checks' folders, with a vocabulary file that exists."""
  out = [a for a in args if not a.startswith(("--data_dir=", "--config.data.vocab_file="))]
  return (["write_pretraining_data.py"] + out
          + [f"--data_dir={folders['data_dir']}", f"--config.data.vocab_file={folders['vocab']}"])


@pytest.fixture(scope="module")
def checks(tmp_path_factory) -> dict:
  """{"run": [result per RUN_COMMANDS], "writer": [...], "missing": result}, each
  {rc, out, err}."""
  base = tmp_path_factory.mktemp("recipes")
  folders = {f: base / f for f in FOLDER_FLAGS}
  for folder in folders.values():
    folder.mkdir()
  folders["vocab"] = base / "vocab.txt"
  folders["vocab"].write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n")
  jobs = ([{"script": "run", "argv": as_dry_run(a, folders)} for _, a in RUN_COMMANDS]
          + [{"script": "writer", "argv": as_writer_check(a, folders)}
             for _, a in WRITER_COMMANDS]
          + [{"script": "run", "argv": as_dry_run(MISSING_FLAG[0], folders)}])
  proc = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(jobs, default=str),
                        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=240)
  marker = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
  assert proc.returncode == 0 and marker, proc.stdout[-2000:] + proc.stderr[-3000:]
  results = json.loads(marker[-1][len("RESULTS "):])
  runs = len(RUN_COMMANDS)
  return {"run": results[:runs], "writer": results[runs:-1], "missing": results[-1]}


def unknown_flag(result: dict):
  match = re.search(r"Unknown command line flag '([^']+)'", result["err"])
  return match.group(1) if match else None


# --------------------------------------------------------------------------------------------
# The commands


def test_the_guide_has_every_recipe():
  assert DOC.exists(), "docs/paper_scale.md is missing"
  written = [w for w, _ in RUN_COMMANDS]
  assert len(RUN_COMMANDS) >= 6 and len(WRITER_COMMANDS) >= 1, written
  assert any("--estimate" in w and "--target=tpu-v3-1024" in w for w in written)
  assert any("--distributed=tpu" in w for w in written), "a TPU slice recipe"
  assert any("--distributed=slurm" in w for w in written), "a SLURM recipe"
  assert any("squad:paper" in w for w in written), "SQuAD fine-tuning"


def test_commands_are_found_the_way_the_shell_splits_them():
  text = ("```bash\nssh h --command=\"cd x && python experiments/run.py --config=table7 \\\n"
          "  --only=^lamb > log 2>&1 &\"\nsrun bash -c 'python experiments/run.py "
          "--config=table5:paper --results_dir=gs://$BUCKET/r'\n```\n"
          "python experiments/run.py --config=outside_a_block\n")
  assert commands(text, "run") == [
      ("python experiments/run.py --config=table7 --only=^lamb",
       ["--config=table7", "--only=^lamb"]),
      ("python experiments/run.py --config=table5:paper --results_dir=gs://$BUCKET/r",
       ["--config=table5:paper", "--results_dir=gs://bucket/r"])]


@pytest.mark.parametrize("index", range(len(RUN_COMMANDS)),
                         ids=[f"{i}-{flag_value(a, 'config')}" for i, (_, a)
                              in enumerate(RUN_COMMANDS)])
def test_run_command_parses_as_its_dry_run(index, checks):
  written, _ = RUN_COMMANDS[index]
  result = checks["run"][index]
  flag = unknown_flag(result)
  assert flag is None, (f"docs/paper_scale.md uses --{flag}, which experiments/run.py does not "
                        f"have (yet): {written}")
  assert result["rc"] == 0, f"{written}\n{result['err'][-1500:]}"
  summary = re.search(r"^(\d+) runs? of (\w+) \((\w+)\)", result["out"], re.M)
  assert summary and int(summary.group(1)) >= 1, result["out"][-1500:]
  assert summary.group(3) == "paper", f"a paper-scale guide runs the paper variant: {written}"


def test_a_flag_run_py_lacks_is_named(checks):
  assert checks["missing"]["rc"] == 2
  assert unknown_flag(checks["missing"]) == MISSING_FLAG[1], checks["missing"]


@pytest.mark.parametrize("index", range(len(WRITER_COMMANDS)),
                         ids=[f"writer{i}" for i in range(len(WRITER_COMMANDS))])
def test_writer_command_reaches_the_corpus(index, checks):
  """The writer stops (status 2, nothing written) only where it looks for Wikipedia in the
  empty data folder: its flags, config and vocabulary were all accepted before that."""
  written, args = WRITER_COMMANDS[index]
  result = checks["writer"][index]
  flag = unknown_flag(result)
  assert flag is None, f"write_pretraining_data.py has no --{flag}: {written}"
  assert result["rc"] == 2, result
  tfds_name = flag_value(args, "config.data.tfds_name") or "wikipedia/20190301.en"
  assert re.search(rf"TFDS '{re.escape(tfds_name)}' is not (prepared|available)",
                   result["err"]), result["err"][-1500:]


# --------------------------------------------------------------------------------------------
# The recipes' bindings


def slurm_problems(block: str) -> list[str]:
  """What keeps a SLURM GPU recipe from running as jax expects: one task per GPU, each seeing
  every GPU of its node (jax gives task i of a node its SLURM_LOCALID-th device), and a memory
  plan for the per-GPU batch."""
  problems = []
  binding = re.findall(r"--(gpus-per-task|gpu-bind|ntasks-per-gpu)\b", block)
  if binding:
    problems.append(f"binds GPUs per task (--{binding[0]}): tasks with SLURM_LOCALID > 0 "
                    "cannot see the device jax gives them")
  opts = options(block)
  nodes, tasks, gpus = (int(opts.get(k, 0)) for k in ("nodes", "ntasks-per-node",
                                                      "gpus-per-node"))
  if not gpus or tasks != gpus:
    problems.append(f"--ntasks-per-node={tasks or '?'} and --gpus-per-node={gpus or '?'} must be "
                    "equal (one process per GPU)")
  for written, args in commands(f"```\n{block}```\n", "run"):
    target = flag_value(args, "target")
    layout = target or flag_value(args, "phase_microbatches") or flag_value(
        args, "config.microbatches")
    if not layout:
      problems.append(f"no --target (or micro-batches) for the per-GPU batch: {written}")
    count = re.fullmatch(r".*-(\d+)", target or "")
    if count and nodes * tasks != int(count.group(1)):
      problems.append(f"--target={target} plans for {count.group(1)} GPUs, the job has "
                      f"{nodes} x {tasks}")
    if flag_value(args, "distributed") not in (None, "slurm", "auto"):
      problems.append(f"--distributed={flag_value(args, 'distributed')} in a SLURM job")
  return problems


def slurm_gpu_blocks(text: str) -> list[str]:
  return [b for b in code_blocks(text) if "#SBATCH" in b and "experiments/run.py" in b]


def test_slurm_recipe_gives_every_task_every_gpu_and_a_memory_plan():
  blocks = slurm_gpu_blocks(TEXT)
  assert blocks, "docs/paper_scale.md has no SLURM GPU training recipe"
  for block in blocks:
    assert slurm_problems(block) == []
  assert "--gpus-per-task" not in "".join(code_blocks(TEXT))


def test_slurm_check_rejects_the_recipe_it_replaced():
  problems = slurm_problems(OLD_SLURM)
  assert any("--gpus-per-task" in p for p in problems), problems
  assert any("no --target" in p for p in problems), problems
  assert any("must be equal" in p for p in problems), problems


def tpu_problems(text: str) -> list[str]:
  """A Cloud TPU VM recipe whose image cannot run the stack, or whose slice is not the one its
  training command plans for."""
  from lamb.train import memory  # pylint: disable=import-outside-toplevel
  problems, slices = [], []
  for block in code_blocks(text):
    if "tpu-vm create" not in block:
      continue
    opts = options(block)
    version, slices = opts.get("version"), slices + [opts.get("accelerator-type")]
    if version not in TPU_SOFTWARE:
      problems.append(f"--version={version} is not a TPU software version for JAX today "
                      f"({', '.join(TPU_SOFTWARE)})")
    if "--python 3.11" not in text:
      problems.append("nothing installs Python 3.11 (jax 0.10.2 needs >= 3.11)")
  for block in code_blocks(text):
    if "tpu-vm ssh" not in block:
      continue
    for written, args in commands(f"```\n{block}```\n", "run"):
      target = flag_value(args, "target")
      if not target:
        problems.append(f"no --target on the slice: {written}")
        continue
      prints = memory.parse_target(target).describe()
      if not any(f"accelerator type {s})" in prints for s in slices):
        problems.append(f"--target={target} is {prints}, not the slice created "
                        f"({', '.join(map(str, slices))})")
  return problems


def test_tpu_recipe_names_an_image_with_python_3_11_and_the_slice_it_plans_for():
  assert "tpu-vm create" in TEXT, "docs/paper_scale.md has no Cloud TPU VM recipe"
  assert tpu_problems(TEXT) == []


def test_tpu_check_rejects_the_recipe_it_replaced():
  problems = tpu_problems(f"```bash\n{OLD_TPU}```\n")
  assert any("--version=tpu-vm-base" in p for p in problems), problems
  assert any("Python 3.11" in p for p in problems), problems
  assert any("v3-1024" in p and "v3-2048" in p for p in problems), problems


# --------------------------------------------------------------------------------------------
# BERT's data


def test_no_recipe_builds_the_wikipedia_dump_that_is_gone():
  """tensorflow/datasets#2535: the 2019 dump's files are deleted; TFDS keeps the config only to
  read copies prepared before."""
  built = re.findall(r"tfds build[^\n]*", "\n".join(code_blocks(TEXT)))
  assert built and not any("wikipedia/20190301" in b for b in built), built


def bert_data_flags(args: list[str]) -> tuple:
  return tuple(sorted(a for a in args if a.startswith("--config.data.")))


def bert_pretraining(args: list[str]) -> bool:
  from experiments import sweep  # pylint: disable=import-outside-toplevel
  spec = flag_value(args, "config")
  return sweep.load_config(sweep.resolve_config(spec)).get("task") == "bert_pretraining"


def test_bert_writer_and_training_commands_name_the_same_instance_folders():
  """The instance folders are named by a digest of the data flags: a training command with
  other `--config.data.*` flags than the writer's looks for folders nobody wrote. (An estimate
  reads no data and may leave them out.)"""
  found = {bert_data_flags(a) for _, a in RUN_COMMANDS + WRITER_COMMANDS
           if bert_pretraining(a) and "--estimate" not in a}
  assert len(found) == 1, found
  (flags,) = found
  assert any(f.startswith("--config.data.vocab_file=") for f in flags), flags


def test_one_written_folder_serves_every_bert_config_the_guide_lists(tmp_path):
  from experiments import sweep, write_pretraining_data  # pylint: disable=import-outside-toplevel
  from lamb.data import pretraining_records  # pylint: disable=import-outside-toplevel
  listed = re.search(r"Every BERT pre-training config \(([^)]*)\)", TEXT)
  assert listed, "the guide names the BERT configs that share the instances"
  names = re.findall(r"`(\w+)`", listed.group(1))
  assert "table4" in names and "table1" in names, names
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("[PAD]\n[UNK]\nthe\n")
  writer_args = WRITER_COMMANDS[0][1]
  overrides = {a[len("--config."):].split("=", 1)[0]: a.split("=", 1)[1]
               for a in bert_data_flags(writer_args)}
  overrides["data.vocab_file"] = str(vocab)

  def folders(name: str) -> set:
    config = sweep.load_config(sweep.resolve_config(f"{name}:paper"))
    with config.unlocked():
      for key, value in overrides.items():
        config.data[key.split(".", 1)[1]] = value
    sections = write_pretraining_data.data_sections(config, set(overrides))
    return {pretraining_records.folder(data, None).name for _, _, data in sections}

  written = folders(flag_value(writer_args, "config").split(":")[0])
  assert len(written) == 2, written  # lengths 128 and 512
  for name in names:
    assert folders(name) == written, name
