"""Versioned health-information standards: data elements, value domains, DWD bindings, mappings, generated checks."""

from medlake.standards.contracts import generate_checks, read_contract_rules, render_contract, rules_for
from medlake.standards.diff import StandardDiff, diff
from medlake.standards.model import Binding, DataElement, Relation, StandardNotFoundError, ValueDomain
from medlake.standards.registry import Registry
from medlake.standards.rules import CHECK_TYPES, Rule, derive_rules

__all__ = [
    "CHECK_TYPES",
    "Binding",
    "DataElement",
    "Registry",
    "Relation",
    "Rule",
    "StandardDiff",
    "StandardNotFoundError",
    "ValueDomain",
    "derive_rules",
    "diff",
    "generate_checks",
    "read_contract_rules",
    "render_contract",
    "rules_for",
]
