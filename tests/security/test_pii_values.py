"""The PII detector's value tests on hand-picked hard cases."""

from __future__ import annotations

import pytest

from medlake.security.classification import Category, suggest_class
from medlake.security.pii import Detection, PiiType, detect_column, detect_value


@pytest.mark.parametrize(("value", "expected"), [
    ("110101199003074514", "id_number"),
    ("１１０１０１１９９００３０７４５１４", "id_number"),  # full-width digits
    ("110101900307451", "id_number"),  # legacy 15 digits, birth 1990-03-07
    ("110101199003074515", None),  # wrong check character
    ("110101199002304516", None),  # 1990-02-30 is not a date
    ("990101199003074514", None),  # 99 is no province
    ("138-1234-5678", "mobile"),
    ("+8613812345678", "mobile"),
    ("12812345678", None),  # 12x is no mobile prefix
    ("(0571)87654321", "landline"),
    ("010-62345678-801", "landline"),
    ("2024-01-05", None),
    ("张伟", "person_name"),
    ("欧阳娜娜", "person_name"),
    ("买买提·艾力", "person_name"),
    ("Zhang Wei", "person_name"),
    ("高血压", None),  # a surname character, but a dictionary word
    ("白蛋白", None),
    ("江南大道", None),
    ("浙江省杭州市西湖区文三路12号3幢2单元301室", "address"),
    ("杭州市上城区人民医院", None),
    ("33010002153980346494", "insurance_number"),
    ("20260101123456789012", None),  # an order number: 20 is no province
    ("6222021234567890128", "bank_card"),
    ("6222021234567890123", None),  # Luhn fails
])
def test_value_tests(value: str, expected: str | None) -> None:
    assert detect_value(value) == expected


def test_column_verdict_needs_a_majority_of_hits() -> None:
    ids = ["110101199003074514", "330102198512120024", "440304197701010021"]
    assert detect_column([*ids, None, "", "unknown"]) == Detection(PiiType.ID_NUMBER, 0.75, 4, PiiType.ID_NUMBER)
    weak = detect_column([ids[0], "a", "b", "c"])
    assert weak.pii_type is None and weak.best is PiiType.ID_NUMBER and weak.hit_ratio == 0.25
    assert detect_column([None, " "]) == Detection(None, 0.0, 0)


def test_name_hints_match_whole_words_for_short_fragments() -> None:
    none = Detection(None, 0.0)
    assert suggest_class("patient_age", none) == (Category.PERSONAL_ATTRIBUTES, 3)
    assert suggest_class("stage", none) == (Category.MEDICAL_APPLICATION, 2)
    assert suggest_class("diag_code", none) == (Category.HEALTH_STATUS, 3)
    assert suggest_class("id_number", none) == (Category.PERSONAL_ATTRIBUTES, 3)  # masked values: still a QI
    assert suggest_class("anything", Detection(PiiType.BANK_CARD, 1.0)) == (Category.MEDICAL_PAYMENT, 4)
