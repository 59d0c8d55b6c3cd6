"""Typed configuration files: `config/<name>.yaml`, validated by a pydantic model on load.

A missing file means the model's defaults (the numbers of DOMAIN.md); an invalid file fails
loudly with the file name and the offending field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
Model = TypeVar("Model", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file that does not match its model."""


def config_dir() -> Path:
    """The folder of configuration files (`CRM_CONFIG_DIR`, default `config/` in the repo)."""
    return Path(os.environ.get("CRM_CONFIG_DIR", CONFIG_DIR))


def load_config(name: str, model: type[Model]) -> Model:
    """Load `config/<name>.yaml` into `model` (defaults when the file is absent)."""
    path = config_dir() / f"{name}.yaml"
    if not path.exists():
        return model()
    try:
        data = yaml.safe_load(path.read_text()) or {}
        return model.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
