"""QSettings <-> TrainingConfig, recent folders and window state.

Every TrainingConfig field has one key under "training/"; a value that is missing, of the wrong
type or out of range falls back to the default, so a hand-edited or old settings file never stops
the window from opening.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from core.config import Augmentation, TrainingConfig
from core.errors import ConfigError

ORGANIZATION = "FitStudio"
APPLICATION = "FitStudio"
MAX_RECENT = 10


RECENT_FOLDERS_KEY = "data/recent_folders"
RECENT_MODELS_KEY = "models/recent"


def recent_paths(settings: QSettings | None, key: str) -> list[str]:
    """The most recent first, at most MAX_RECENT; [] without settings."""
    value = settings.value(key, []) if settings is not None else []
    if isinstance(value, str):  # QSettings returns a lone string for a one-item list
        value = [value] if value else []
    return [str(v) for v in value or [] if str(v)][:MAX_RECENT]


def add_recent_path(settings: QSettings | None, key: str, path: str) -> list[str]:
    """Puts `path` first (once, whatever its spelling) and returns the new list."""
    same = os.path.normpath(path)
    paths = [path] + [p for p in recent_paths(settings, key) if os.path.normpath(p) != same]
    paths = paths[:MAX_RECENT]
    if settings is not None:
        settings.setValue(key, paths)
    return paths


def default_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


class SettingsStore:
    def __init__(self, settings: QSettings | None = None):
        self.settings = settings if settings is not None else default_settings()

    # --- training configuration -------------------------------------------------------------

    def load_config(self) -> TrainingConfig:
        defaults = TrainingConfig()
        values: dict[str, Any] = {}
        for f in dataclasses.fields(TrainingConfig):
            if f.name == "augmentation":
                values[f.name] = self._load_augmentation()
                continue
            key = f"training/{f.name}"
            if not self.settings.contains(key):
                continue
            value = _convert(self.settings.value(key), getattr(defaults, f.name))
            if value is not _INVALID:
                values[f.name] = value
        if values.get("val_dir") == "":
            values["val_dir"] = None  # saved as "": split the training folder instead
        try:
            return TrainingConfig(**{**defaults.to_dict(), **values}).validate()
        except (ConfigError, TypeError):
            return defaults

    def save_config(self, config: TrainingConfig) -> None:
        for name, value in config.to_dict().items():
            if name == "augmentation":
                for switch, on in value.items():
                    self.settings.setValue(f"training/augmentation/{switch}", bool(on))
            else:
                # None (no validation folder) is stored as "" because INI files have no null.
                self.settings.setValue(f"training/{name}", "" if value is None else value)
        self.settings.sync()

    def _load_augmentation(self) -> Augmentation:
        switches = {}
        for f in dataclasses.fields(Augmentation):
            key = f"training/augmentation/{f.name}"
            if self.settings.contains(key):
                value = _convert(self.settings.value(key), False)
                switches[f.name] = bool(value) if value is not _INVALID else False
        return Augmentation(**switches)

    # --- recent folders -----------------------------------------------------------------------

    def recent_folders(self) -> list[str]:
        return recent_paths(self.settings, RECENT_FOLDERS_KEY)

    def add_recent_folder(self, path: str) -> list[str]:
        return add_recent_path(self.settings, RECENT_FOLDERS_KEY, path)

    def last_validation_folder(self) -> str:
        return str(self.settings.value("data/last_val_dir", "") or "")

    def set_last_validation_folder(self, path: str) -> None:
        self.settings.setValue("data/last_val_dir", path)

    # --- window state ---------------------------------------------------------------------------

    def window_state(self, name: str) -> QByteArray | None:
        value = self.settings.value(f"window/{name}")
        return value if isinstance(value, QByteArray) else None

    def set_window_state(self, name: str, state: QByteArray) -> None:
        self.settings.setValue(f"window/{name}", state)

    def advanced_settings_open(self) -> bool:
        """Whether the settings panel's Advanced section was open when last left (folded at first)."""
        return _convert(self.settings.value("window/advanced_settings_open", False), False) is True

    def set_advanced_settings_open(self, open_: bool) -> None:
        self.settings.setValue("window/advanced_settings_open", bool(open_))

    def sync(self) -> None:
        self.settings.sync()


_INVALID = object()


def _convert(raw: Any, default: Any) -> Any:
    """The stored value as the type of `default` (INI files give back strings), or _INVALID."""
    try:
        if default is None or isinstance(default, str):
            return "" if raw is None else str(raw)
        if isinstance(default, bool):
            return raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except (TypeError, ValueError):
        return _INVALID
    return _INVALID
