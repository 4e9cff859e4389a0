"""The transaction categoriser: a scikit-learn model that reads a statement line (description,
merchant name, amount, direction) and names the programme's category with a probability.

It decides only where the provider's category is missing or not confident (`categorise`); a
member's correction wins over both. Trained by `python -m badges.cli.train_categoriser` on the
corpus of `badges/insights/training.py`; saved with its version, the library versions and its
evaluation beside it (`models/categoriser.json`), and loaded once per process.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import FeatureUnion, Pipeline

from badges.domain.categories import CONFIDENT, Categorised, SpendingCategory, from_provider
from badges.insights.training import Example

MODEL_VERSION = "categoriser-1"
MODELS = Path(__file__).parent / "models"
_DIGITS = re.compile(r"\d+")
_META = "\x1f"  # separates the text from the direction and size tokens


def features(description: str, merchant_name: str | None, amount_minor: int) -> str:
    """One string per transaction: the words (digits folded, so store and reference numbers do
    not matter), then a direction token and an order-of-magnitude token for the amount."""
    text = _DIGITS.sub("0", f"{merchant_name or ''} {description}".lower())
    size = int(math.log2(1 + abs(amount_minor) / 100))
    return f"{text}{_META}{'in' if amount_minor > 0 else 'out'} size{size}"


def _text(document: str) -> str:
    return document.partition(_META)[0]


def _meta(document: str) -> str:
    return document.partition(_META)[2]


def build_pipeline() -> Pipeline:
    return Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        (
                            "text",
                            TfidfVectorizer(
                                preprocessor=_text, analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True
                            ),
                        ),
                        ("words", TfidfVectorizer(preprocessor=_text, analyzer="word", token_pattern=r"[a-z&']{2,}")),
                        ("meta", TfidfVectorizer(preprocessor=_meta, analyzer="word", token_pattern=r"\S+")),
                    ]
                ),
            ),
            ("classify", LogisticRegression(C=8.0, max_iter=3000)),
        ]
    )


def _documents(examples: Sequence[Example]) -> list[str]:
    return [features(e.description, e.merchant_name, e.amount_minor) for e in examples]


def evaluate(examples: Sequence[Example], folds: int = 5) -> dict[str, Any]:
    """Macro-F1 on merchants the model has never seen (whole merchants held out per fold), and
    where gambling and fast food go wrong."""
    documents = np.array(_documents(examples), dtype=object)
    labels = np.array([e.category.value for e in examples])
    groups = np.array([e.group for e in examples])
    predicted = np.empty_like(labels)
    for train, test in GroupKFold(n_splits=folds).split(documents, labels, groups):
        model = build_pipeline().fit(documents[train], labels[train])
        predicted[test] = model.predict(documents[test])
    names = [category.value for category in SpendingCategory]
    matrix = confusion_matrix(labels, predicted, labels=names)
    per_class = f1_score(labels, predicted, labels=names, average=None, zero_division=0)
    watched = {}
    for focus in (SpendingCategory.GAMBLING, SpendingCategory.FAST_FOOD):
        row = matrix[names.index(focus.value)]
        column = matrix[:, names.index(focus.value)]
        watched[focus.value] = {
            "predictedAs": {names[i]: int(n) for i, n in enumerate(row) if n},
            "mistakenFor": {names[i]: int(n) for i, n in enumerate(column) if n and names[i] != focus.value},
        }
    return {
        "heldOut": "whole merchants",
        "folds": folds,
        "examples": len(examples),
        "merchants": len(set(groups)),
        "macroF1": round(float(f1_score(labels, predicted, labels=names, average="macro", zero_division=0)), 4),
        "perCategoryF1": {name: round(float(score), 4) for name, score in zip(names, per_class, strict=True)},
        "confusion": watched,
    }


def train(examples: Sequence[Example]) -> Pipeline:
    return build_pipeline().fit(_documents(examples), [e.category.value for e in examples])


def save(model: Pipeline, metrics: dict[str, Any], directory: Path = MODELS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "categoriser.joblib"
    joblib.dump(model, path, compress=3)
    card = {"version": MODEL_VERSION, "sklearn": sklearn.__version__, "metrics": metrics}
    (directory / "categoriser.json").write_text(json.dumps(card, indent=2) + "\n")
    return path


@dataclass(frozen=True)
class Categoriser:
    model: Pipeline
    version: str

    def predict(self, lines: Sequence[tuple[str, str | None, int]]) -> list[Categorised]:
        """The most likely category of each (description, merchant name, amount) and its probability."""
        if not lines:
            return []
        probabilities = self.model.predict_proba([features(*line) for line in lines])
        classes = self.model.classes_
        best = probabilities.argmax(axis=1)
        return [
            Categorised(SpendingCategory(classes[i]), "model", round(float(row[i]), 4))
            for i, row in zip(best, probabilities, strict=True)
        ]


class ModelMissing(RuntimeError):
    pass


@lru_cache(maxsize=1)
def load(directory: Path = MODELS) -> Categoriser:
    card_path, model_path = directory / "categoriser.json", directory / "categoriser.joblib"
    if not model_path.exists():
        raise ModelMissing(f"no categoriser at {model_path}: run `python -m badges.cli.train_categoriser`")
    card = json.loads(card_path.read_text())
    if card["sklearn"] != sklearn.__version__:
        raise ModelMissing(
            f"the categoriser was trained with scikit-learn {card['sklearn']}, this is {sklearn.__version__}: "
            "run `python -m badges.cli.train_categoriser`"
        )
    return Categoriser(joblib.load(model_path), card["version"])


def categorise(
    categoriser: Categoriser,
    transactions: Sequence[tuple[str, str | None, int, str | None, str | None, str | None, str | None]],
) -> list[Categorised]:
    """Each transaction's category: the provider's where it is confident, else the model's (or the
    provider's, if the model is less sure than the provider). A transaction is (description,
    merchant name, amount, detailed category, primary category, confidence level, MCC)."""
    decided: list[Categorised | None] = []
    unsure: list[int] = []
    for index, (_, _, _, detailed, primary, level, mcc) in enumerate(transactions):
        found = from_provider(detailed, primary, level, mcc)
        decided.append(found)
        if found is None or found.confidence < CONFIDENT:
            unsure.append(index)
    guesses = categoriser.predict([transactions[i][:3] for i in unsure])
    for index, guess in zip(unsure, guesses, strict=True):
        provider = decided[index]
        if provider is None or guess.confidence > provider.confidence:
            decided[index] = guess
    return [found for found in decided if found is not None]
