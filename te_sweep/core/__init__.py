"""The training core: one trial, from its settings to its per-epoch records. No Ray.

`te-sweep train` and every sweep trial run this layer; the tests run it directly. It imports
nothing from te_sweep.results or te_sweep.sweep (tests/test_layers.py), and never Ray, so a
trial's code can be read, run and profiled without a cluster.

- The settings: config (TrialConfig), presets (the paper's five CNNs), space (a search space
  file: which settings are fixed and which Optuna searches), preflight (every check made before
  data is loaded).
- Training: sources, npz and data (the data set on the device), models, train (the loop),
  timing, cpu_threads.
- The TE feedback: te (batched transfer entropy), te_window (sliding counts), feedback (the
  step that feeds TE back into the weights), te_compile (torch.compile for it).
- What a trial reports: metrics (the per-epoch metrics), outcome (status and epochs to
  target), objectives (what Optuna minimises), reporting (the dict told to Tune each epoch),
  console (the terminal's epoch table).
"""
