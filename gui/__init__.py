"""The FitStudio window: widgets only; training runs in core/ on a worker thread."""
