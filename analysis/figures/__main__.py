"""`python -m analysis.figures NAME`: see the package's docstring."""
import sys

from analysis.figures import main

if __name__ == "__main__":
  # argparse would call the command `__main__.py`; the usage line keeps the name it always had.
  sys.exit(main(prog="figures.py"))
