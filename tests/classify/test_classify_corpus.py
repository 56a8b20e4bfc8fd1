"""The shipped rules on real-world CI error messages (tests/data/failure-corpus.yaml, each with its origin)."""

from __future__ import annotations

from pathlib import Path

import yaml

from etl.classify import CATEGORIES, Classifier

ROOT = Path(__file__).resolve().parents[2]
CORPUS = yaml.safe_load((ROOT / "tests" / "data" / "failure-corpus.yaml").read_text(encoding="utf-8"))["entries"]


def test_corpus_has_at_least_200_cited_real_world_messages() -> None:
    assert len(CORPUS) >= 200
    assert all(e["origin"].startswith("https://") for e in CORPUS)
    assert {e["category"] for e in CORPUS} <= set(CATEGORIES)


def test_corpus_covers_at_least_ten_categories() -> None:
    assert len({e["category"] for e in CORPUS}) >= 10


def test_shipped_rules_classify_at_least_90_percent_of_the_corpus() -> None:
    classifier = Classifier.from_file(ROOT / "config" / "failure-rules.yaml")
    wrong = [(e["category"], classifier.classify(message=e["message"]).category, e["origin"]) for e in CORPUS
             if classifier.classify(message=e["message"]).category != e["category"]]
    accuracy = 1 - len(wrong) / len(CORPUS)
    assert accuracy >= 0.90, wrong
