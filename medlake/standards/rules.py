"""Quality rules derived from a standards release: one rule per check, with its Soda check and its SQL predicate.

Every rule carries a Kahn category (completeness / conformance / plausibility) and subcategory, a severity, and —
for row-level rules — a SQL predicate (DuckDB dialect) that is TRUE for a failing row. Soda executes the checks
and counts; quarantine selects failing rows itself with the same predicate, because open-source Soda returns counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medlake.errors import ConfigurationError
from medlake.identifiers import CHECK_CHARS, CHECK_WEIGHTS
from medlake.sources import source
from medlake.standards.model import Binding, DataElement, Relation
from medlake.standards.registry import DWD_LOAD_COLUMNS, Registry

__all__ = [
    "ACTIONS",
    "CHECK_TYPES",
    "CODE_MAP_VIEW",
    "DEFAULT_ACTIONS",
    "SEVERITIES",
    "Rule",
    "derive_rules",
    "merge_key",
    "sql_type",
]

SEVERITIES = ("fatal", "error", "warn", "info")
ACTIONS = ("warn", "quarantine", "fail")
DEFAULT_ACTIONS = {"fatal": "fail", "error": "quarantine", "warn": "warn", "info": "warn"}

# check type → (Kahn category, subcategory, default severity)
CHECK_TYPES: dict[str, tuple[str, str, str]] = {
    "row_count": ("completeness", "table", "error"),
    "key_missing": ("completeness", "value", "fatal"),
    "required_missing": ("completeness", "value", "error"),
    "missing_rate": ("completeness", "value", "info"),
    "placeholder": ("completeness", "value", "warn"),
    "conditional_required": ("completeness", "relational", "warn"),
    "schema": ("conformance", "value", "fatal"),
    "value_domain": ("conformance", "value", "error"),
    "format": ("conformance", "value", "error"),
    "fixed_length": ("conformance", "value", "error"),
    "max_length": ("conformance", "value", "warn"),
    "min_length": ("conformance", "value", "warn"),
    "trimmed": ("conformance", "value", "warn"),
    "decimal_places": ("conformance", "computational", "warn"),
    "id_check_digit": ("conformance", "computational", "error"),
    "id_birth_date_valid": ("conformance", "value", "error"),
    "id_region_known": ("conformance", "relational", "warn"),
    "code_region_known": ("conformance", "relational", "error"),
    "code_mapped": ("conformance", "relational", "warn"),
    "product_agree": ("conformance", "computational", "warn"),
    "key_duplicate": ("plausibility", "uniqueness", "fatal"),
    "candidate_duplicate": ("plausibility", "uniqueness", "info"),
    "unique_within": ("plausibility", "uniqueness", "error"),
    "value_range": ("plausibility", "atemporal", "warn"),
    "positive": ("plausibility", "atemporal", "warn"),
    "mean_range": ("plausibility", "atemporal", "info"),
    "amount_not_exceed": ("plausibility", "atemporal", "error"),
    "sum_not_exceed": ("plausibility", "atemporal", "warn"),
    "range_order": ("plausibility", "atemporal", "warn"),
    "sign_agree": ("plausibility", "atemporal", "warn"),
    "id_birth_date_agree": ("plausibility", "atemporal", "error"),
    "id_sex_agree": ("plausibility", "atemporal", "warn"),
    "age_range": ("plausibility", "atemporal", "warn"),
    "not_future": ("plausibility", "temporal", "warn"),
    "not_before": ("plausibility", "temporal", "warn"),
    "temporal_order": ("plausibility", "temporal", "error"),
    "duration_range": ("plausibility", "temporal", "warn"),
    "freshness": ("plausibility", "temporal", "warn"),
}

_PLACEHOLDERS = ("NULL", "null", "None", "N/A", "n/a", "-", "--", "无", "不详")
_SQL_TYPES = {"string": "VARCHAR", "int": "BIGINT", "decimal": "DECIMAL", "date": "DATE", "datetime": "TIMESTAMP"}
_ID18 = "'^[0-9]{17}[0-9X]$'"
_MISSING_RATE_MAX_PERCENT = 80
_FRESHNESS_HOURS = 48
# Lookup the quality runner registers beside the checked table: (map_institution, map_category, map_local_code),
# every local code listed in the mapping tables of the institutions present (see medlake.quality.lookups).
CODE_MAP_VIEW = "medlake_code_map"


@dataclass(frozen=True)
class Rule:
    """One generated check. ``soda`` is the Soda v4 check body ({type: {...}}) without name/qualifier/attributes."""

    rule_id: str
    table: str
    column: str | None
    check_type: str
    severity: str
    description: str
    soda: dict[str, Any]
    predicate: str | None = None  # SQL, TRUE for a failing row (may use window functions); None: table-level
    element_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def category(self) -> str:
        return CHECK_TYPES[self.check_type][0]

    @property
    def subcategory(self) -> str:
        return CHECK_TYPES[self.check_type][1]

    @property
    def default_action(self) -> str:
        return DEFAULT_ACTIONS[self.severity]

    @property
    def blocking(self) -> bool:
        return self.severity == "fatal"

    @property
    def row_level(self) -> bool:
        return self.predicate is not None


def _q(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _lit(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _in_list(values: list[str]) -> str:
    return ", ".join(_lit(v) for v in values)


def merge_key(table: str) -> tuple[str, ...]:
    """Key a DWD table is merged on: (institution_code, *business_key); settlements on setl_id alone."""
    spec = source(table)
    return spec.business_key if spec.delivered_by == "insurance" else ("institution_code", *spec.business_key)


class _Deriver:
    def __init__(self, registry: Registry, table: str) -> None:
        self.registry = registry
        self.table = table
        self.rules: list[Rule] = []
        self.key = merge_key(table)

    def add(self, check_type: str, column: str | None, description: str, soda: dict[str, Any],
            predicate: str | None = None, element_id: str | None = None, severity: str | None = None) -> None:
        severity = severity or CHECK_TYPES[check_type][2]
        base = f"{self.table}.{column}.{check_type}" if column else f"{self.table}.{check_type}"
        rule_id, n = base, 1
        while any(r.rule_id == rule_id for r in self.rules):
            n += 1
            rule_id = f"{base}_{n}"
        self.rules.append(Rule(rule_id, self.table, column, check_type, severity, description, soda, predicate,
                               element_id))

    # -- table level ---------------------------------------------------------------------------------------------
    def table_rules(self) -> None:
        self.add("schema", None, "columns and types as the bound data elements say", {"schema": {}})
        self.add("row_count", None, "the table is not empty",
                 {"row_count": {"threshold": {"must_be_greater_than": 0}}})
        self.add("freshness", None, f"newest load at most {_FRESHNESS_HOURS} hours old",
                 {"freshness": {"column": "_loaded_at",
                                "threshold": {"unit": "hour", "must_be_less_than_or_equal": _FRESHNESS_HOURS}}})
        cols = ", ".join(_q(c) for c in self.key)
        # rows whose key occurs more than once: one hash aggregate and a semi join (cheaper than Soda's
        # count(distinct md5(key)) duplicate metric, and the same rows the quarantine predicate selects)
        query = (f'SELECT * FROM "main"."{self.table}" SEMI JOIN (SELECT {cols} FROM "main"."{self.table}" '
                 f"GROUP BY {cols} HAVING count(*) > 1) AS _duplicated USING ({cols})")
        self.add("key_duplicate", None, f"merge key ({', '.join(self.key)}) is unique",
                 {"failed_rows": {"query": query}},
                 predicate=f"count(*) OVER (PARTITION BY {cols}) > 1")

    # -- column level --------------------------------------------------------------------------------------------
    def column_rules(self, binding: Binding) -> None:
        el = self.registry.element(binding.element_id)
        col, q = binding.column, _q(binding.column)
        eid = el.id
        is_text = el.dtype == "string"
        blank = " OR " + q + " = ''" if is_text else ""
        missing_soda: dict[str, Any] = {"missing_values": [""]} if is_text else {}
        if col in self.key:
            self.add("key_missing", col, f"{el.name} ({col}) is part of the merge key and never missing",
                     {"missing": missing_soda}, f"{q} IS NULL{blank}", eid)
        elif self.registry.required(binding):
            self.add("required_missing", col, f"{el.name} ({col}) is required",
                     {"missing": missing_soda}, f"{q} IS NULL{blank}", eid)
        elif (limit := _MISSING_RATE_MAX_PERCENT if el.max_missing_percent is None else el.max_missing_percent) < 100:
            soda = {**missing_soda, "threshold": {"metric": "percent", "must_be_less_than_or_equal": limit}}
            self.add("missing_rate", col, f"{el.name} ({col}) filled in at least {100 - limit}% of rows",
                     {"missing": soda}, f"{q} IS NULL{blank}", eid)
        if is_text:
            self.text_rules(el, col, q)
        elif el.dtype in ("int", "decimal"):
            self.number_rules(el, col, q)
        else:
            self.time_rules(el, col, q)

    def text_rules(self, el: DataElement, col: str, q: str) -> None:
        eid = el.id
        if col not in DWD_LOAD_COLUMNS:
            self.add("placeholder", col, f"{col} holds no placeholder text such as 'NULL' or '无'",
                     {"invalid": {"invalid_values": list(_PLACEHOLDERS)}},
                     f"{q} IN ({_in_list(list(_PLACEHOLDERS))})", eid)
            self.add("trimmed", col, f"{col} has no leading or trailing spaces",
                     {"failed_rows": {"expression": f"{q} <> trim({q})"}}, f"{q} <> trim({q})", eid)
        if el.value_domain:
            domain = self.registry.value_domain(el.value_domain)
            if domain.codes:
                severity = "warn" if domain.reference_file else "error"
                self.add("value_domain", col, f"{col} is a code of {domain.id} ({domain.name}, "
                         f"{len(domain.codes)} codes)", {"invalid": {"valid_values": domain.code_list}},
                         f"{q} IS NOT NULL AND {q} NOT IN ({_in_list(domain.code_list)})", eid, severity)
        if el.format:
            self.add("format", col, f"{col} matches {el.format}",
                     {"invalid": {"valid_format": {"regex": el.format, "name": f"{el.name}格式"}}},
                     f"{q} IS NOT NULL AND NOT regexp_matches({q}, {_lit(el.format)})", eid)
        if el.length:
            self.add("fixed_length", col, f"{col} has exactly {el.length} characters",
                     {"invalid": {"valid_length": el.length}}, f"length({q}) <> {el.length}", eid)
        if el.max_length:
            self.add("max_length", col, f"{col} has at most {el.max_length} characters",
                     {"invalid": {"valid_max_length": el.max_length}}, f"length({q}) > {el.max_length}", eid)
        if el.min_length:
            self.add("min_length", col, f"{col} has at least {el.min_length} characters",
                     {"invalid": {"valid_min_length": el.min_length}}, f"length({q}) < {el.min_length}", eid)

    def number_rules(self, el: DataElement, col: str, q: str) -> None:
        eid = el.id
        if el.min is not None or el.max is not None:
            soda: dict[str, Any] = {}
            parts = []
            if el.min is not None:
                soda["valid_min"] = el.min
                parts.append(f"{q} < {el.min}")
            if el.max is not None:
                soda["valid_max"] = el.max
                parts.append(f"{q} > {el.max}")
            self.add("value_range", col, f"{col} between {el.min} and {el.max}", {"invalid": soda},
                     " OR ".join(parts), eid)
        if el.exclusive_min and el.min == 0:
            self.add("positive", col, f"{col} is greater than zero",
                     {"failed_rows": {"expression": f"{q} <= 0"}}, f"{q} <= 0", eid)
        if el.scale is not None:
            pred = f"{q} <> round({q}, {el.scale})"
            self.add("decimal_places", col, f"{col} has at most {el.scale} decimal places",
                     {"failed_rows": {"expression": pred}}, pred, eid)

    def time_rules(self, el: DataElement, col: str, q: str) -> None:
        eid = el.id
        now = "current_date" if el.dtype == "date" else "localtimestamp"
        literal = "DATE" if el.dtype == "date" else "TIMESTAMP"
        if el.max in ("today", "now"):
            pred = f"{q} > {now}"
            self.add("not_future", col, f"{col} is not in the future", {"failed_rows": {"expression": pred}},
                     pred, eid)
        if el.min is not None and el.min not in ("today", "now"):
            pred = f"{q} < {literal} {_lit(el.min)}"
            self.add("not_before", col, f"{col} is not before {el.min}", {"failed_rows": {"expression": pred}},
                     pred, eid)

    def mean_rules(self) -> None:
        spec = source(self.table)
        for col in spec.amount_columns:
            binding = next(b for b in self.registry.bindings_for(self.table) if b.column == col)
            el = self.registry.element(binding.element_id)
            if el.max is None:
                continue
            self.add("mean_range", col, f"average {col} between {el.min or 0} and {el.max}",
                     {"aggregate": {"function": "avg", "threshold": {"must_be_between": {
                         "greater_than_or_equal": el.min or 0, "less_than_or_equal": el.max}}}},
                     None, el.id)

    # -- relations -----------------------------------------------------------------------------------------------
    def relation_rules(self, relation: Relation) -> None:
        by_element: dict[str, list[Binding]] = {}
        for b in self.registry.bindings_for(self.table):
            by_element.setdefault(b.element_id, []).append(b)
        if not all(e in by_element for e in relation.elements):
            return
        cols = [by_element[e][0].column for e in relation.elements]
        dtypes = [self.registry.element(e).dtype for e in relation.elements]
        built = _RELATION_SQL[relation.kind](self, [_q(c) for c in cols], dtypes, relation.params)
        subject_index, predicate, window = built
        subject = cols[subject_index]
        description = relation.note or f"{relation.kind} over {', '.join(cols)}"
        if window:  # Soda counts the rows; carrying only the key through the window keeps the pass narrow
            key = ", ".join(_q(k) for k in self.key)
            query = (f'SELECT {key} FROM (SELECT {key}, {predicate} AS _failed FROM "main"."{self.table}") '
                     "WHERE _failed")
            soda: dict[str, Any] = {"failed_rows": {"query": query}}
        else:
            soda = {"failed_rows": {"expression": predicate}}
        self.add(relation.kind, subject, description, soda, predicate, relation.elements[subject_index],
                 relation.severity)


def _as_date(column: str, dtype: str, other: str) -> str:
    return f"CAST({column} AS DATE)" if dtype != other and "date" in (dtype, other) else column


def _id_digits_sum(q: str) -> str:
    return " + ".join(f"{w} * CAST(substr({q}, {i + 1}, 1) AS INTEGER)" for i, w in enumerate(CHECK_WEIGHTS))


def _rel_id_check_digit(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    q = c[0]
    return 0, (f"regexp_matches({q}, {_ID18}) AND "
               f"substr('{CHECK_CHARS}', (({_id_digits_sum(q)}) % 11) + 1, 1) <> substr({q}, 18, 1)"), False


def _rel_id_birth_date_valid(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    q = c[0]
    return 0, f"regexp_matches({q}, {_ID18}) AND try_strptime(substr({q}, 7, 8), '%Y%m%d') IS NULL", False


def _rel_id_region_known(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    q = c[0]
    domain = d.registry.value_domain(str(p.get("value_domain", "GB/T 2260")))
    provinces = sorted({code[:2] for code in domain.codes if code.endswith("0000")})
    return 0, f"regexp_matches({q}, {_ID18}) AND substr({q}, 1, 2) NOT IN ({_in_list(provinces)})", False


def _rel_id_birth_date_agree(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    q, birth = c
    return 1, (f"regexp_matches({q}, {_ID18}) AND {birth} IS NOT NULL AND "
               f"substr({q}, 7, 8) <> strftime({birth}, '%Y%m%d')"), False


def _rel_id_sex_agree(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    q, sex = c
    return 1, (f"regexp_matches({q}, {_ID18}) AND {sex} IN ('1', '2') AND "
               f"(CAST(substr({q}, 17, 1) AS INTEGER) % 2 = 1) <> ({sex} = '1')"), False


def _rel_age_range(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    years = int(p.get("max_years", 120))
    return 0, f"{c[0]} < current_date - INTERVAL {years} YEAR", False


def _rel_temporal_order(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    first, then = _as_date(c[0], t[0], t[1]), _as_date(c[1], t[1], t[0])
    return 1, f"{then} < {first}", False


def _rel_duration_range(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    return 1, f"date_diff('day', {c[0]}, {c[1]}) > {int(p.get('max_days', 366))}", False


def _rel_amount_not_exceed(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    return 0, f"{c[0]} > {c[1]}", False


def _rel_sum_not_exceed(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    parts = " + ".join(f"coalesce({x}, 0)" for x in c[:-1])
    return 0, f"{parts} > {c[-1]} + {float(p.get('tolerance', 0.01))}", False


def _rel_conditional_required(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    return 1, f"{c[0]} = {_lit(p['when'])} AND {c[1]} IS NULL", False


def _rel_product_agree(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    return 2, f"abs({c[0]} * {c[1]} - {c[2]}) > {float(p.get('tolerance', 0.01))}", False


def _rel_range_order(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    return 0, f"{c[0]} > {c[1]}", False


def _rel_sign_agree(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    value, reference = c
    return 0, f"{value} < 0 AND {reference} >= 0", False


def _rel_code_region_known(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    q, start = c[0], int(p.get("start", 1))
    domain = d.registry.value_domain(str(p.get("value_domain", "GB/T 2260")))
    return 0, f"length({q}) >= {start + 5} AND substr({q}, {start}, 6) NOT IN ({_in_list(domain.code_list)})", False


def _rel_code_mapped(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    code, category = c
    return 0, (f"{code} IS NOT NULL AND {category} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {CODE_MAP_VIEW} m "
               f'WHERE m.map_institution = "institution_code" AND m.map_category = {category} '
               f"AND m.map_local_code = {code})"), True


def _partition(d: _Deriver, *columns: str) -> str:
    lead = [_q(k) for k in d.key if k == "institution_code"]
    return ", ".join([*lead, *columns])


def _rel_unique_within(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    group, flag = c
    value = _lit(p.get("value", "1"))
    over = _partition(d, group)
    return 1, (f"({flag} = {value} AND sum(CASE WHEN {flag} = {value} THEN 1 ELSE 0 END) "
               f"OVER (PARTITION BY {over}) > 1)"), True


def _rel_candidate_duplicate(d: _Deriver, c: list[str], t: list[str], p: dict[str, Any]) -> tuple[int, str, bool]:
    ident, other = c
    over = f"OVER (PARTITION BY {_partition(d, ident)})"
    return 0, f"({ident} IS NOT NULL AND min({other}) {over} <> max({other}) {over})", True


_RELATION_SQL = {
    "id_check_digit": _rel_id_check_digit,
    "id_birth_date_valid": _rel_id_birth_date_valid,
    "id_region_known": _rel_id_region_known,
    "id_birth_date_agree": _rel_id_birth_date_agree,
    "id_sex_agree": _rel_id_sex_agree,
    "age_range": _rel_age_range,
    "temporal_order": _rel_temporal_order,
    "duration_range": _rel_duration_range,
    "amount_not_exceed": _rel_amount_not_exceed,
    "sum_not_exceed": _rel_sum_not_exceed,
    "conditional_required": _rel_conditional_required,
    "product_agree": _rel_product_agree,
    "range_order": _rel_range_order,
    "sign_agree": _rel_sign_agree,
    "code_region_known": _rel_code_region_known,
    "code_mapped": _rel_code_mapped,
    "unique_within": _rel_unique_within,
    "candidate_duplicate": _rel_candidate_duplicate,
}


def derive_rules(registry: Registry, table: str) -> list[Rule]:
    """Every rule for DWD table ``table`` from the release: table defaults, bound elements, relations."""
    deriver = _Deriver(registry, table)
    deriver.table_rules()
    for binding in registry.bindings_for(table):
        deriver.column_rules(binding)
    deriver.mean_rules()
    for relation in registry.relations:
        if relation.kind not in _RELATION_SQL:
            raise ConfigurationError(f"release {registry.version}: relation kind {relation.kind!r} has no check")
        deriver.relation_rules(relation)
    return deriver.rules


def sql_type(dtype: str) -> str:
    return _SQL_TYPES[dtype]
