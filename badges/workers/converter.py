"""The data converter every client and worker uses: pydantic JSON, then our encryption codec."""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from badges.db.keys import KeyStore
from badges.workers.codec import EncryptionCodec


def make_data_converter(keys: KeyStore) -> DataConverter:
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys))
