"""Badge catalogues: the built-in legacy catalogue (revision 0) and parsing the catalogue file.

`LEGACY_CATALOGUE` is what member workflows evaluate until an event names a newer revision from
the database; running workflows were built on it, so it never changes. The shipped catalogue
(`badges/catalogue.yaml`) is read by the caller and parsed here, refused with the field named.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from badges.domain.definitions import BadgeDefinition, Catalogue, CountRule, SpecFieldError

LEGACY_CATALOGUE: tuple[BadgeDefinition, ...] = (
    BadgeDefinition(
        badge_id="calculator-explorer",
        version=1,
        name="Calculator explorer",
        description="Use a financial calculator 3 times.",
        rule=CountRule(event_type="tool_usage", target=3),
    ),
    BadgeDefinition(
        badge_id="regular-attendee",
        version=1,
        name="Regular attendee",
        description="Attend 3 events.",
        rule=CountRule(event_type="attendance", target=3),
    ),
    BadgeDefinition(
        badge_id="active-voter",
        version=1,
        name="Active voter",
        description="Vote on 5 propositions.",
        rule=CountRule(event_type="voting", target=5),
    ),
)


def catalogue_by_id(catalogue: Sequence[BadgeDefinition] = LEGACY_CATALOGUE) -> dict[str, BadgeDefinition]:
    return {badge.badge_id: badge for badge in catalogue}


class CatalogueError(ValueError):
    """A catalogue file that cannot be used. `path` names the first failing field the way the file
    spells it (`badges.weekly-regular.rule.length`; empty for the document itself); `problems`
    holds every (path, message) found."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        self.path, self.message = self.problems[0]
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"{self.path or 'catalogue'}: {self.message}{suffix}")


def parse_catalogue(text: str) -> Catalogue:
    """Validate a catalogue document (YAML, camelCase fields as on the wire)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_repeated_keys(node, ())
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        raise CatalogueError([("", f"not valid YAML: {error}")]) from error
    finally:
        loader.dispose()
    try:
        return Catalogue.model_validate(document)
    except ValidationError as error:
        raise CatalogueError([_problem(document, item) for item in error.errors()]) from error


def _refuse_repeated_keys(node: Any, path: tuple[str, ...]) -> None:
    """YAML lets a later key silently replace an earlier one; in a catalogue that loses a badge."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                where = ".".join((*path, key))
                raise CatalogueError([(where, f"repeated key (line {key_node.start_mark.line + 1})")])
            seen.add(key)
            _refuse_repeated_keys(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for n, item in enumerate(node.value):
            _refuse_repeated_keys(item, (*path, str(n)))


def _problem(document: Any, error: ErrorDetails) -> tuple[str, str]:
    """The error's location as the file's path: without the union tags pydantic inserts after a
    field holding a discriminated union (`rule.streak.length` is `rule.length` in the file), and
    extended by the field a cross-field check named."""
    parts: list[str] = []
    current = document
    skip_tag: str | None = None
    for item in error["loc"]:
        if skip_tag is not None and item == skip_tag:
            skip_tag = None
            continue
        skip_tag = None
        parts.append(str(item))
        if isinstance(current, dict) and item in current:
            current = current[item]
            if isinstance(current, dict) and isinstance(current.get("kind"), str):
                skip_tag = current["kind"]
        elif isinstance(current, list) and isinstance(item, int) and 0 <= item < len(current):
            current = current[item]
        else:
            current = None
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SpecFieldError):
        parts.extend(cause.field.split("."))
    message = str(cause) if isinstance(cause, Exception) else error["msg"]
    return ".".join(parts), message
