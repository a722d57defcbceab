"""What a training failure was, told from the exception alone: a leaf module (no TensorFlow, no
other training module), so the window's model thread and the Ray workers can ask without importing
the run."""

from __future__ import annotations


def lost_a_worker(exc: BaseException) -> bool:
    """TensorFlow's collective ops fail so when another worker of the group died."""
    return type(exc).__name__ == "UnavailableError" or "Collective ops is aborted" in str(exc)


def is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "ResourceExhaustedError" or isinstance(exc, MemoryError)


def describe_failure(exc: BaseException) -> str:
    if is_out_of_memory(exc):
        return "Out of memory: reduce batch size or image size, then train again."
    return f"{type(exc).__name__}: {exc}"
