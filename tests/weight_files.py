"""Headless weight files made on the spot, and a local HTTP mirror that misbehaves on request.

`backbone_weight_file(tmp_path_factory)` saves a randomly initialised MobileNetV2 without its top in the
legacy HDF5 layout of Keras's ImageNet files, once per session (building it takes seconds). Its input
size does not matter: MobileNetV2's weights have the same shapes at every size.

`WeightsMirror` serves files over HTTP on 127.0.0.1 from a thread; the first part of the path picks how:
/good/ sends the file, /truncated/ half of it with the full Content-Length, /html/ a login page,
/stall/ the headers and then nothing until the mirror closes (`stalls_ended` counts the stalled
responses that ended, so a test can tell that its client gave up first), /missing/ a 404.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MOBILENET_IMAGE_SIZE = 32  # the smallest Keras accepts; Keras looks up the 224 px weight file for it
_cache: dict[str, str] = {}


def backbone_weight_file(tmp_path_factory, model: str = "mobilenetv2") -> str:
    """Path of a valid weight file for `model`'s headless backbone (do not modify it: copy it)."""
    if model not in _cache:
        import h5py

        from core.modeling.weights import build_backbone

        path = str(tmp_path_factory.mktemp("weights") / f"{model}_random_no_top.h5")
        backbone = build_backbone(model, MOBILENET_IMAGE_SIZE)  # loads Keras, under tf_runtime's lock
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(path, "w") as handle:  # the layout of Keras's own downloads
            legacy_h5_format.save_weights_to_hdf5_group(handle, backbone)
        _cache[model] = path
    return _cache[model]


def saved_layer_weights(h5_path: str) -> dict:
    """{layer name: its weight arrays, in get_weights() order} as stored in a legacy weight file."""
    import h5py
    import numpy as np

    def text(value):
        return value.decode() if isinstance(value, bytes) else value

    with h5py.File(h5_path, "r") as handle:
        return {
            text(layer): [np.array(handle[text(layer)][text(name)])
                          for name in handle[text(layer)].attrs["weight_names"]]
            for layer in handle.attrs["layer_names"]
        }


def first_kernel(h5_path: str, layer: str = "Conv1"):
    """The kernel of `layer` as stored in a legacy weight file."""
    return saved_layer_weights(h5_path)[layer][0]


class WeightsMirror:
    """A folder of files served over HTTP on 127.0.0.1 (port chosen by the system), in a thread."""

    def __init__(self, folder: str):
        self.folder = folder
        self.release = threading.Event()  # ends the stalling responses
        self.requests: list[str] = []
        self.stalls_ended = 0
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                mode, _, name = self.path.strip("/").partition("/")
                path = os.path.join(mirror.folder, os.path.basename(name))
                if mode == "missing" or not os.path.isfile(path):
                    self.send_error(404, "Not Found")
                    return
                with open(path, "rb") as handle:
                    body = handle.read()
                if mode == "html":
                    page = b"<html><body>Please log in to use this network.</body></html>"
                    self._send(page, len(page), "text/html")
                elif mode == "truncated":
                    self._send(body[: len(body) // 2], len(body))
                elif mode == "stall":
                    self._send(b"", len(body))
                    mirror.release.wait(timeout=30)
                    mirror.stalls_ended += 1
                else:
                    self._send(body, len(body))

            def _send(self, body: bytes, length: int, kind: str = "application/octet-stream"):
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="test weights mirror",
                                       daemon=True)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{mode}/"

    def __enter__(self) -> WeightsMirror:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
