"""Where a run trains and how fast: the device picker, this computer or a Ray cluster, the worker count,
the consent to open ports, mixed precision and XLA. Maps one-to-one onto TrainingConfig's gpus,
workers, cluster, allow_open_ports, precision and jit (README: Several GPUs and machines)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from core.config import CLUSTER_NETWORK_NOTE, LIMITS, OPEN_PORTS_WARNING, TrainingConfig
from core.training.device import GpuInfo
from core.training.distribution.ray_launcher import RAY_INSTALL, ray_installed

THIS_COMPUTER, RAY_CLUSTER = "local", "cluster"
AUTOMATIC, ALL_GPUS = "", "all"


class PlacementPanel(QGroupBox):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Where it trains", parent)
        self.device = QComboBox()
        self.where = QComboBox()
        self.where.addItem("This computer", THIS_COMPUTER)
        self.where.addItem("Ray cluster at …", RAY_CLUSTER)
        self.address = QLineEdit()
        self.address.setPlaceholderText("host:port, from ray start --head")
        self.workers = QSpinBox()
        self.workers.setRange(*(int(v) for v in LIMITS["workers"]))
        self.workers.setSpecialValueText("1 (this process)")
        # TensorFlow's collective servers of local workers listen on every interface: only on request.
        self.open_ports = QCheckBox("Allow open ports")
        self.network_note = QLabel()
        self.network_note.setObjectName("trainHint")
        self.network_note.setWordWrap(True)
        self.precision = QComboBox()
        self.precision.addItem("float32", "float32")
        self.precision.addItem("Mixed (float16 on GPU, bfloat16 on CPU)", "mixed")
        self.jit = QCheckBox("Compile with XLA")
        self.ray_hint = QLabel(f"Workers and clusters need Ray: {RAY_INSTALL}")
        self.ray_hint.setObjectName("trainHint")
        self.ray_hint.setWordWrap(True)
        self._ray = ray_installed()
        self._pending_gpus = AUTOMATIC
        self.set_gpus([])
        self._build_layout()
        self._add_tooltips()
        self._connect()
        self._update_enabled()

    def _build_layout(self) -> None:
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(5)
        form.addRow("Device", self.device)
        form.addRow("Train on", self.where)
        form.addRow("Cluster", self.address)
        form.addRow("Workers", self.workers)
        form.addRow("Network", self.open_ports)
        form.addRow(self.network_note)
        form.addRow("Precision", self.precision)
        form.addRow("XLA", self.jit)
        form.addRow(self.ray_hint)
        self.ray_hint.setVisible(not self._ray)

    def _add_tooltips(self) -> None:
        self.device.setToolTip("The GPUs of this computer to train on; several at once use MirroredStrategy")
        self.where.setToolTip("This computer, or the workers of a running Ray cluster (ray start --head)")
        self.address.setToolTip(
            "The head's address; the data and output folders must be at the same path on every machine"
        )
        self.workers.setToolTip(
            "Worker processes, one GPU each where there are enough. On this computer, more than 1 starts "
            "a private Ray cluster for the run."
        )
        self.open_ports.setToolTip(
            "Several workers on this computer talk through TensorFlow's servers, which listen on every "
            "network interface without authentication while the run lasts. For several GPUs of this "
            "computer, choose them under Device instead."
        )
        self.precision.setToolTip("Mixed precision keeps weights and the last layer in float32")
        self.jit.setToolTip("Compile the training step with XLA: often faster on GPUs, slower to start")

    def _connect(self) -> None:
        self.device.currentIndexChanged.connect(self.changed)
        self.where.currentIndexChanged.connect(self._update_enabled)
        self.where.currentIndexChanged.connect(self.changed)
        self.workers.valueChanged.connect(self._update_enabled)
        self.workers.valueChanged.connect(self.changed)
        self.address.textChanged.connect(self.changed)
        self.open_ports.toggled.connect(self._update_enabled)
        self.open_ports.toggled.connect(self.changed)
        self.precision.currentIndexChanged.connect(self.changed)
        self.jit.toggled.connect(self.changed)

    def _update_enabled(self) -> None:
        """A setting that does nothing in the current state is shown disabled, not hidden."""
        on_cluster = self.where.currentData() == RAY_CLUSTER
        self.address.setEnabled(on_cluster and self._ray)
        self.where.setEnabled(self._ray or on_cluster)
        self.workers.setEnabled(self._ray)
        local_workers = not on_cluster and self.workers.value() > 1
        self.open_ports.setEnabled(self._ray and local_workers)
        self.network_note.setText(self._network_note(on_cluster, local_workers))
        self.network_note.setVisible(bool(self.network_note.text()))
        # Ray workers use the GPU Ray gives each; the picker is for training in this process.
        self.device.setEnabled(not on_cluster and self.workers.value() == 1 and self.device.count() > 1)

    def _network_note(self, on_cluster: bool, local_workers: bool) -> str:
        """What the network must be, said before the run starts (the engine says it again in the log)."""
        if on_cluster:
            return CLUSTER_NETWORK_NOTE
        if local_workers and self.open_ports.isChecked():
            return OPEN_PORTS_WARNING
        if local_workers:
            return "Workers on this computer open ports: tick Allow open ports, or choose GPUs under Device."
        return ""

    def set_gpus(self, gpus: list[GpuInfo]) -> None:
        """Fills the device picker (from core.training.device.list_gpus, probed in the background)."""
        chosen = self.device.currentData() if self.device.count() > 1 else self._pending_gpus
        self.device.blockSignals(True)
        self.device.clear()
        if not gpus:
            self.device.addItem("CPU only: no GPU found", AUTOMATIC)
        else:
            self.device.addItem("Automatic (the first GPU)", AUTOMATIC)
            if len(gpus) > 1:
                self.device.addItem(f"All {len(gpus)} GPUs", ALL_GPUS)
            for gpu in gpus:
                self.device.addItem(gpu.label(), str(gpu.index))
        self.device.setCurrentIndex(max(0, self.device.findData(chosen)))
        self.device.blockSignals(False)
        self._update_enabled()

    def set_config(self, config: TrainingConfig) -> None:
        self._pending_gpus = config.gpus
        index = self.device.findData(config.gpus)
        if index >= 0:
            self.device.setCurrentIndex(index)
        self.where.setCurrentIndex(self.where.findData(RAY_CLUSTER if config.cluster else THIS_COMPUTER))
        self.address.setText(config.cluster)
        self.workers.setValue(config.workers)
        self.open_ports.setChecked(config.allow_open_ports)
        self.precision.setCurrentIndex(max(0, self.precision.findData(config.precision)))
        self.jit.setChecked(config.jit)
        self._update_enabled()

    def apply_to(self, config: TrainingConfig) -> TrainingConfig:
        on_cluster = self.where.currentData() == RAY_CLUSTER
        in_process = not on_cluster and self.workers.value() == 1
        gpus = self.device.currentData() if self.device.count() > 1 else self._pending_gpus
        return config.replace(
            gpus=(gpus or "") if in_process else "",
            cluster=self.address.text().strip() if on_cluster else "",
            workers=self.workers.value(),
            allow_open_ports=self.open_ports.isChecked() and not on_cluster and self.workers.value() > 1,
            precision=self.precision.currentData(),
            jit=self.jit.isChecked(),
        )
