"""An equal catalogue snapshot read from payloads is one object in the worker, however many
member workflows' inputs carry it (each copy is objects every full garbage collection walks)."""

from __future__ import annotations

import uuid

from temporalio.contrib.pydantic import pydantic_data_converter

from badges.api.catalogue import read_catalogue_file
from badges.domain.catalogue import parse_catalogue
from badges.domain.definitions import BadgeDefinition
from badges.messages.user_badges import CatalogueSnapshot, UserBadgesInput

CONVERTER = pydantic_data_converter.payload_converter


def shipped(revision: int) -> CatalogueSnapshot:
    catalogue = parse_catalogue(read_catalogue_file(""))
    badges = [BadgeDefinition.from_spec(badge_id, 1, spec) for badge_id, spec in catalogue.badges.items()]
    return CatalogueSnapshot(revision=revision, badges=badges)


def read(value: UserBadgesInput) -> UserBadgesInput:
    payload = CONVERTER.to_payloads([value])[0]
    found = CONVERTER.from_payloads([payload], [UserBadgesInput])[0]
    assert isinstance(found, UserBadgesInput)
    return found


def test_members_inputs_with_the_same_catalogue_share_one_snapshot() -> None:
    snapshot = shipped(revision=7)
    first = read(UserBadgesInput(user_id=uuid.uuid4(), catalogue=snapshot))
    second = read(UserBadgesInput(user_id=uuid.uuid4(), catalogue=snapshot))
    assert first.user_id != second.user_id
    assert first.catalogue is second.catalogue and first.catalogue == snapshot


def test_a_different_catalogue_is_its_own_snapshot() -> None:
    snapshot = shipped(revision=7)
    changed = snapshot.model_copy(update={"badges": snapshot.badges[1:]})
    newer = snapshot.model_copy(update={"revision": 8})
    read_snapshot, read_changed, read_newer = (
        read(UserBadgesInput(user_id=uuid.uuid4(), catalogue=value)).catalogue for value in (snapshot, changed, newer)
    )
    assert read_snapshot == snapshot and read_changed == changed and read_newer == newer
    assert read_snapshot is not read_changed and read_snapshot is not read_newer


def test_snapshots_built_in_code_are_not_shared() -> None:
    badges = shipped(revision=3).badges
    assert CatalogueSnapshot(revision=3, badges=badges) is not CatalogueSnapshot(revision=3, badges=badges)
