"""Hyperparameter sweeps on Ray Tune (issue 24): the search space (space), the sweep's bookkeeping
and its run on a Ray cluster (runner, tune_run), and one trial as an ordinary run (trial,
tune_report). Ray and TensorFlow are imported only once a sweep runs."""
