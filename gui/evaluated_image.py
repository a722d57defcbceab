"""How one evaluated image appears in the Evaluate tab's galleries: its title (true -> predicted class),
its bars (the chosen class's probability, and the true one's or the runner-up's), a tooltip with every
probability, and the classes whose heatmaps explain it (for a mistake: the chosen and the true class)."""

from __future__ import annotations

import os

from gui.gallery import GREEN, GREY, RED, Bar, GalleryItem
from gui.text import escape


def evaluated_image_item(image, class_names: list[str]) -> GalleryItem:
    """A core.modeling.evaluation image result (path, labels, probabilities) as a gallery item."""
    true_name, predicted_name = class_names[image.true_label], class_names[image.predicted_label]
    explain, explain_labels = (image.predicted_label,), (f"why {predicted_name}",)
    if image.correct:
        bars = (Bar(predicted_name, image.confidence, GREEN),)
        second = max(
            (i for i in range(len(class_names)) if i != image.predicted_label),
            key=lambda i: float(image.probabilities[i]),
            default=None,
        )
        if second is not None:
            bars += (Bar(class_names[second], float(image.probabilities[second]), GREY),)
        title = f"{true_name} ✓"
    else:
        bars = (
            Bar(f"→ {predicted_name}", image.confidence, RED),
            Bar(true_name, image.true_probability, GREEN),
        )
        title = f"{true_name} → {predicted_name}"
        explain += (image.true_label,)
        explain_labels = (f"why {predicted_name} (chosen)", f"why {true_name} (true)")
    return GalleryItem(
        image.path, title, bars, _tooltip(image, class_names), data=image, explain=explain,
        explain_labels=explain_labels,
    )


def _tooltip(image, class_names: list[str]) -> str:
    true_name, predicted_name = class_names[image.true_label], class_names[image.predicted_label]
    probabilities = "<br>".join(
        f"{name}: {float(p):.1%}"
        for name, p in sorted(
            zip(class_names, image.probabilities, strict=True), key=lambda pair: -float(pair[1])
        )
    )
    return (
        f"<b>{escape(os.path.basename(image.path))}</b><br>true class {escape(true_name)}, "
        f"predicted {escape(predicted_name)}<br>{probabilities}<br>"
        f"<span style='color:#667085'>{escape(image.path)}</span>"
    )
