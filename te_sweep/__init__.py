"""te-sweep: hyperparameter sweeps over transfer-entropy modulated CNN training.

The training core (te, feedback, models, data, train) knows nothing about Ray and is used
directly by `te-sweep train` and the tests; the sweep layer (space, searcher, trainable, sweep,
export) runs it on Ray Tune with Optuna. Kept import-light: nothing heavy is imported here, so
`te-sweep --help` stays instant.
"""

__version__ = "0.1.0"
