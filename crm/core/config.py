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

from crm.core.errors import OperatorError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
Model = TypeVar("Model", bound=BaseModel)


class ConfigError(OperatorError):
    """A configuration file that does not match its model (exit 3, one line naming the file and the field)."""


def config_dir() -> Path:
    """The folder of configuration files (`CRM_CONFIG_DIR`, default `config/` in the repo)."""
    return Path(os.environ.get("CRM_CONFIG_DIR", CONFIG_DIR))


def load_config(name: str, model: type[Model]) -> Model:
    """Load `config/<name>.yaml` into `model` (defaults when the file is absent)."""
    folder = config_dir()
    if not folder.is_dir():  # a mistyped CRM_CONFIG_DIR must not silently mean "defaults"
        raise ConfigError(f"CRM_CONFIG_DIR: the folder {folder} does not exist; check the path")
    path = folder / f"{name}.yaml"
    if not path.exists():
        return model()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where} ({getattr(exc, 'problem', None) or exc})") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_field_errors(exc)}") from exc


def _field_errors(exc: ValidationError) -> str:
    """`field.path: message (got value)` for each error, on one line."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        got = (
            f" (got {error['input']!r})" if error["type"] != "missing" and not isinstance(error["input"], dict) else ""
        )
        parts.append(f"{field}: {message}{got}")
    return "; ".join(parts)
