"""Data: folder-per-class datasets from disk to batches. Scanning and checking files (`dataset`),
decoding one image to the model's input (`images`), the batch streams with their decoded-image
caches that feed `fit`, `evaluate` and `predict` (`pipeline`), the disk cache of decoded images that
runs share (`disk_cache`) and its filling ahead of a run (`warmup`), a backbone's features kept in
that cache (`feature_cache`) and the batches of them that feed `fit` (`feature_stream`), the
fingerprint and manifest of the data a run trained on (`fingerprint`), reading a video's frames
(`video`, PyAV) and saving camera or video frames into class folders (`capture`).

May import the core base modules (errors, paths, config, events, files) and nothing else of core:
models, runs and training build on data, never the other way round.
"""
