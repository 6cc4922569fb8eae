"""`python -m te_sweep ...`: the same CLI as the `te-sweep` script, where none is installed."""

from te_sweep.cli import main

main()
