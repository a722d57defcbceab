"""The settings panel's words: what each model is, each setting's tooltip, what the folded Advanced
section holds, and the estimate of what computing cached features will cost. Text only, no widgets."""

from __future__ import annotations

from core.data.feature_cache import rough_feature_seconds
from core.formatting import format_duration

MODEL_HINTS = {
    "small-cnn": "small CNN trained from scratch: fast, good for simple images",
    "mobilenetv2": "MobileNetV2 transfer learning: light, pretrained on ImageNet when cached",
    "efficientnetb0": "EfficientNetB0 transfer learning: most accurate, slowest",
}
MODEL_TOOLTIP = "\n".join(f"{name}: {hint}" for name, hint in MODEL_HINTS.items())

ADVANCED_TOOLTIP = (
    "Resize mode, class weights, learning-rate plateau, fine-tuning, seed, decode threads, image "
    "cache, output folder, and where the run trains (device, Ray cluster, precision)"
)

# SettingsPanel attribute -> its widget's tooltip
SETTING_TOOLTIPS = {
    "epochs": "Passes over the training images",
    "batch_size": "Images per training step; lower it if memory runs out",
    "image_size": "Side of the square model input; transfer models work best at 224",
    "learning_rate": "Step size of the Adam optimizer (arrow keys step 1-2-5 per decade)",
    "seed": "Same seed, same data and settings: same shuffling and initial weights",
    "decode_threads": "Threads that decode images while the model trains",
    "import_weights_button": (
        "Give FitStudio the ImageNet weight file of this model (for computers without internet): "
        "it is checked, then copied into the Keras cache"
    ),
    "weights_url": (
        "A mirror of Keras's weight files (a web folder holding them); the file name is appended. "
        "Empty: $FITSTUDIO_WEIGHTS_URL, else Keras's own servers"
    ),
    "early_stopping_patience": (
        "Stop when the validation loss has not improved for this many epochs "
        "(the best epoch is kept as model.keras). Off: always train every epoch."
    ),
    "reduce_lr_patience": (
        "Reduce the learning rate on a plateau: multiply it by the factor when the validation loss "
        "has not improved for this many epochs. Off: keep the learning rate."
    ),
    "reduce_lr_factor": "What the learning rate is multiplied by on a plateau",
    "fine_tune_after": (
        "Fine-tuning, for the pretrained models: after this many epochs with the pretrained base "
        "frozen, unfreeze its top layers and go on with a lower learning rate. Off: keep it frozen."
    ),
    "fine_tune_layers": (
        "How many of the base's top layers fine-tuning unfreezes (BatchNormalization layers stay "
        "frozen, as Keras's guide advises)"
    ),
    "fine_tune_learning_rate": (
        "Learning rate while fine-tuning: small (1e-5), so the pretrained features are adjusted, "
        "not overwritten"
    ),
    "cache": (
        "Decode every image once and keep the pixels for the following epochs (in memory while "
        "the budget lasts, else in a temporary file on disk) and, within the disk cache, for later runs"
    ),
    "cache_memory_mb": (
        "Memory the decoded-image cache may use; what does not fit goes to a disk file. "
        "Automatic: a quarter of this computer's memory"
    ),
    "cache_disk_mb": (
        "Disk space for decoded images kept between runs, so the next run on the same folder, size "
        "and resize mode starts without decoding; the least recently used datasets are removed first"
    ),
    "balance_classes": (
        "Weight each class's loss by n_images / (n_classes x n_class), so that a small class counts "
        "as much as a large one (Data health shows the weights)"
    ),
    "out_dir": "Each run creates a new folder here with the model, history and report",
}


def feature_cost_text(model: str, image_size: int, views: int, image_count: int) -> str:
    """What fast training costs once: the backbone's pass over every image (`views` passes when
    augmented copies are made), per 100 images and, when known, for the `image_count` images."""
    per_hundred = rough_feature_seconds(model, image_size, 100) * views
    total = (f": about {_rough(per_hundred * image_count / 100)} for these {image_count:,}"
             if image_count else "")
    return (f"The backbone runs once per image (about {_rough(per_hundred)} per 100 images at "
            f"{image_size} px on a laptop CPU{total}); then only the head trains, and later runs on "
            "the same images reuse the features.")


def _rough(seconds: float) -> str:
    return f"{max(seconds, 1):.0f} s" if seconds < 90 else format_duration(seconds)
