"""The PII detector's precision and recall per type on a labelled column set (synthetic deliveries plus generated
columns and hard negatives, ``pii_columns``): goal precision ≥ 0.98 and recall ≥ 0.95 for every type."""

from __future__ import annotations

from pathlib import Path

import pytest

from medlake.security.pii import PiiType, detect_column, detect_value
from tests.security.pii_columns import labelled_columns

PRECISION, RECALL = 0.98, 0.95


@pytest.mark.slow
def test_detector_precision_and_recall_per_type(tmp_path: Path) -> None:
    columns = labelled_columns(tmp_path / "medlake")
    predicted = {c.name: str(detect_column(c.values).pii_type or "none") for c in columns}
    lines = [f"{'type':<18}{'columns':>8}{'tp':>6}{'fp':>6}{'fn':>6}{'precision':>11}{'recall':>8}"]
    failures = []
    for kind in PiiType:
        tp = sum(1 for c in columns if c.label == kind and predicted[c.name] == kind)
        fp = sum(1 for c in columns if c.label != kind and predicted[c.name] == kind)
        fn = sum(1 for c in columns if c.label == kind and predicted[c.name] != kind)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        lines.append(f"{kind.value:<18}{tp + fn:>8}{tp:>6}{fp:>6}{fn:>6}{precision:>11.3f}{recall:>8.3f}")
        if precision < PRECISION or recall < RECALL:
            failures.append(kind.value)
    negatives = [c for c in columns if c.label == "none"]
    false_alarms = [c.name + "→" + predicted[c.name] for c in negatives if predicted[c.name] != "none"]
    lines.append(f"negative columns: {len(negatives)}, flagged: {len(false_alarms)} {false_alarms[:5]}")
    print("\n" + "\n".join(lines))
    missed = [f"{c.name} ({c.label}→{predicted[c.name]})" for c in columns
              if c.label != "none" and predicted[c.name] != c.label]
    assert not failures, "\n".join([*lines, "missed: " + ", ".join(missed[:10])])


@pytest.mark.slow
def test_value_level_figures(tmp_path: Path) -> None:
    """Per value (each value labelled with its column's type): precision ≥ 0.98 (bank cards ≥ 0.95: a random 16–19
    digit number with a card prefix passes Luhn one time in ten, so single values of the hard-negative number
    columns are indistinguishable from cards; the column verdict above is what decides). Recall is printed, lower
    by the deliveries' injected defects (transposed digits, pinyin spellings) that rightly fail the tests."""
    per_name: dict[str, int] = {}
    columns = []
    for c in labelled_columns(tmp_path / "medlake", generated_per_kind=5):  # ≤ 10 columns of each delivered column
        base = c.name.split("[", 1)[0]
        per_name[base] = per_name.get(base, 0) + 1
        if per_name[base] <= 10:
            columns.append(c)
    lines = [f"{'type':<18}{'values':>8}{'precision':>11}{'recall':>8}"]
    low = []
    for kind in PiiType:
        tp = fp = fn = 0
        for c in columns:
            for value in c.values:
                if value is None or not value.strip():
                    continue
                hit = detect_value(value) == kind
                tp += hit and c.label == kind
                fp += hit and c.label != kind
                fn += not hit and c.label == kind
        precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        lines.append(f"{kind.value:<18}{tp + fn:>8}{precision:>11.4f}{recall:>8.4f}")
        if precision < (0.95 if kind is PiiType.BANK_CARD else PRECISION):
            low.append(kind.value)
    print("\n" + "\n".join(lines))
    assert not low, "\n".join(lines)
