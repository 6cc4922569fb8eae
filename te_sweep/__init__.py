"""te-sweep: hyperparameter sweeps over transfer-entropy modulated CNN training.

Three layers, each a subpackage that imports only the ones listed before it
(tests/test_layers.py):

- core/: one trial, from its settings to its per-epoch records; no Ray.
- results/: a sweep's results read back from disk: Parquet tables, statistics, report; no Ray.
- sweep/: running sweeps on Ray Tune with Optuna: launch, search, trials, faults, live view.

cli.py (the `te-sweep` command) sits on top; errors.py and exit_codes.py are shared by all.
Kept import-light: nothing heavy is imported here, so `te-sweep --help` stays instant.
"""

from te_sweep import moved

__version__ = "0.1.0"

moved.install()  # sweeps pickled before the layers name the modules' old paths
