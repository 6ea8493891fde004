"""`python -m analysis.tables NAME`: see the package's docstring."""
import sys

from analysis.tables import main


# The usage line names the command as it always has, so that its output stays the same.
sys.exit(main(prog="tables.py"))
