"""Checks that a plaid-python model is complete: every field its schema requires is present, all the way down."""

from __future__ import annotations

import inspect
import json
from typing import Any

import plaid
from plaid.model_utils import ModelComposed, ModelNormal


def required_fields(model: type[Any]) -> set[str]:
    """Required fields are the positional parameters of `_from_openapi_data`; a composed model adds its parts'."""
    parameters = inspect.signature(model._from_openapi_data).parameters
    names = {name for name, p in parameters.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD}
    if issubclass(model, ModelComposed):
        for part in model._composed_schemas["allOf"]:
            names |= required_fields(part)
    return names


def assert_complete(value: Any, path: str = "response") -> None:
    if isinstance(value, list):
        for index, element in enumerate(value):
            assert_complete(element, f"{path}[{index}]")
    elif isinstance(value, ModelNormal | ModelComposed):
        for name in required_fields(type(value)):
            assert name in value, f"{path}.{name} is required by {type(value).__name__} but missing"
        for name in value.attribute_map:
            if name in value:
                assert_complete(value.get(name), f"{path}.{name}")


class _RawResponse:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body)

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return "application/json; charset=utf-8" if name.lower() == "content-type" else default


def deserialize(body: dict[str, Any], model: type[Any]) -> Any:
    """What plaid-python does with a response body: typed, checked deserialisation into `model`."""
    return plaid.ApiClient(plaid.Configuration()).deserialize(_RawResponse(body), (model,), True)
