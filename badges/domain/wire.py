"""The wire convention every layer shares: camelCase names on the wire (the seed's `userId`,
`eventData`), snake_case in Python."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """camelCase on the wire, even from a plain `model_dump()`; either name is accepted on input."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)
