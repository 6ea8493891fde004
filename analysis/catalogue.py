"""The catalogue: which runs each table, figure and claim of the paper reads, declared once.

Every experiment name the analysis knows is a constant here (`E`), and every artefact (Tables
1-25, Figures 1-14, the claims) lists the experiments it reads (`READS`). The tables, figures
and claims ask the catalogue for their runs instead of spelling folder names, so a renamed
experiment is one edit and a reader can see, in one screen, where each number of the report
comes from. Arms that one experiment trains for another (`SHARED_ARMS`) and the arms a claim
must have before it can be judged (`REQUIRED_ARMS`) are declared here too: a claim that compares
against several arms needs every one of them, and a missing arm is "not run", named. So are the
experiments that hold each optimizer's ImageNet batch ladder (`IMAGENET_LADDERS`) and the ladders
placed against the measured critical batch (`CRITICAL_BATCH_LADDERS`).
"""
from __future__ import annotations

from types import SimpleNamespace

# Experiment names (the folders under results/ and the configs of experiments/configs/).
E = SimpleNamespace(
    # BERT (Tables 1, 2, 4, 8; Figures 6, 7)
    TABLE1="table1", TABLE2="table2", TABLE4="table4", TABLE8="table8",
    TABLE8_REPLICATES="table8_replicates", MIXED_BATCH="mixed_batch", NADO_BERT="nado_bert",
    BERT_CORRECTION="bert_correction", FIGURE6="figure6", FIGURE7="figure7", SQUAD="squad",
    BERT_MULTIPLIERS="bert_multipliers", LADDER_MULTIPLIERS="ladder_multipliers",
    TOP_RUNG_MULTIPLIERS="top_rung_multipliers", NOISE_SCALE_BERT="noise_scale_bert",
    # ImageNet stand-in (Tables 3, 5, 9-25; Figures 1-3, 9-14)
    TABLE3="table3", TABLE5="table5", LARS_IMAGENET="lars_imagenet",
    MOMENTUM_LADDER="momentum_ladder", NADO_IMAGENET="nado_imagenet", NADO_TUNING="nado_tuning",
    FIGURE1="figure1", FIGURE2="figure2", FIGURE3="figure3", FIGURES9_14="figures9_14",
    NOISE_SCALE="noise_scale",
    # CIFAR-10 and MNIST (Tables 6, 7; Figures 4, 5)
    TABLE6="table6", TABLE6_REPLICATES="table6_replicates", TABLE7="table7",
    TABLE7_REPLICATES="table7_replicates", FIGURE4="figure4", FIGURE5="figure5",
    # systems (Figure 8)
    FIGURE8="figure8",
)

TUNING_GRIDS = tuple(f"table{n}" for n in range(9, 26))  # Tables 9-25, one experiment each
# The experiment of each tuning grid by the number of the table that prints it.
TUNING_GRID = dict(zip(range(9, 26), TUNING_GRIDS))

# Which experiments each claim reads (the report's "runs" column; the compute table prices
# each decided claim by these).
CLAIM_READS = {
    "1": (E.TABLE4,), "2": (E.TABLE1, E.TABLE4), "3": (E.TABLE1, E.MIXED_BATCH),
    "4": (E.MIXED_BATCH,), "5a": (E.TABLE2, E.TABLE4), "5b": (E.TABLE2,),
    "5c": (E.TABLE1, E.TABLE2), "6": (E.TABLE8, E.TABLE8_REPLICATES, E.TABLE1),
    "6b": (E.NADO_BERT, E.TOP_RUNG_MULTIPLIERS), "7": (E.MIXED_BATCH,), "8": (E.TABLE3,),
    "8b": (E.TABLE3,), "9": (E.TABLE3,), "10": (E.TABLE3, E.TABLE5, E.MOMENTUM_LADDER),
    "10b": (E.NADO_IMAGENET, E.NADO_TUNING), "11": (E.LARS_IMAGENET, E.TABLE5),
    "12": (E.TABLE5,), "12b": (E.TABLE5,), "13a": (E.FIGURE1, E.TABLE5),
    "13b": (E.FIGURE1, E.TABLE5, E.MOMENTUM_LADDER), "14": (E.FIGURE2,),
    "15": (E.FIGURE2, E.TABLE3), "15b": (E.BERT_CORRECTION, E.TABLE4),
    "16": (E.FIGURE3, E.TABLE3), "17": (E.TABLE6, E.TABLE6_REPLICATES),
    "18": (E.TABLE7, E.TABLE7_REPLICATES), "19": (E.TABLE6,), "20": (E.FIGURE6, E.TABLE4),
    "21": (E.FIGURE7, E.MIXED_BATCH), "22": (E.FIGURES9_14,), "23": (), "T": (),
}

# Which experiments each table and figure reads.
TABLE_READS = {
    "table1": (E.TABLE1, E.TABLE4, E.MIXED_BATCH, E.SQUAD),
    "table2": (E.TABLE2, E.TABLE4, E.SQUAD),
    "table3": (E.TABLE3,), "table4": (E.TABLE4, E.SQUAD), "table5": (E.TABLE5,),
    "table6": (E.TABLE6,), "table7": (E.TABLE7,), "table8": (E.TABLE8, E.SQUAD),
    **{grid: (grid,) for grid in TUNING_GRIDS},
}
FIGURE_READS = {
    "figure1": (E.FIGURE1, E.TABLE5), "figure2": (E.FIGURE2, E.TABLE3),
    "figure3": (E.FIGURE3, E.TABLE3), "figure4": (E.TABLE6,), "figure5": (E.TABLE6,),
    "figure6": (E.FIGURE6, E.TABLE4), "figure7": (E.FIGURE7, E.MIXED_BATCH),
    "figure8": (),  # the paper's Table 1 times and the cost model: no runs
    "trust_ratio": (E.FIGURES9_14, E.TABLE7),  # Table 7's runs where figures9_14 has none
    "imagenet_ladders": (E.TABLE5, E.LARS_IMAGENET, E.MOMENTUM_LADDER, E.TABLE3, E.NOISE_SCALE),
}

# The ImageNet batch ladders figure draws one line per optimizer, each from the experiments that
# hold its rungs (runs are placed by their recorded paper batch): momentum's 16K rung is Table
# 3's, and LAMB's 2K rung, below Table 5's cpu ladder, is trained beside LARS's.
IMAGENET_LADDERS = (("lamb", (E.TABLE5, E.LARS_IMAGENET)),
                    ("momentum", (E.TABLE3, E.MOMENTUM_LADDER)),
                    ("lars", (E.LARS_IMAGENET,)))

# The batch ladders the report places against the measured critical batch (the noise scale of
# their task), in the order it lists them: ImageNet's first, then BERT's.
CRITICAL_BATCH_LADDERS = (E.TABLE5, E.MOMENTUM_LADDER, E.LARS_IMAGENET, E.TABLE4, E.TABLE2,
                          E.TABLE1)

# Arms of a figure that another experiment trains as it is: the same config but for its name
# and how often it evaluates (the training records are the same to the bit), read there so that
# the reproduction trains them once. figure: (source experiment, the source's variant, the
# column that names the arm in the figure, the arm's value there).
SHARED_ARMS = {
    E.FIGURE1: (E.TABLE5, "32K", "config.optimizer.name", "lamb"),
    E.FIGURE2: (E.TABLE3, "lamb", "config.variant", "correction_warmup"),
    E.FIGURE3: (E.TABLE3, "lamb", "config.optimizer.kwargs.norm", "l2"),
}

# The arms a "best of" claim compares LAMB against: the paper's rows, whatever runs happen to
# be in the folder. A missing one leaves the claim "not run", named.
REQUIRED_ARMS = {
    E.TABLE6: ("adagrad", "adam", "adamw", "momentum"),
    E.TABLE6_REPLICATES: ("adagrad", "adam", "adamw", "momentum"),
    E.TABLE7: ("adagrad", "adam", "adamw", "momentum"),
    E.TABLE7_REPLICATES: ("adagrad", "adam", "adamw", "momentum"),
    E.TABLE3: ("adagrad", "adagrad+", "adam", "adam+", "adamw", "adamw+", "momentum"),
}


def experiments() -> tuple:
  """Every experiment the catalogue names."""
  return tuple(sorted(set(vars(E).values()) | set(TUNING_GRIDS)))
