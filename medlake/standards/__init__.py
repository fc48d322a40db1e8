"""Versioned health-information standards: data elements, value domains, DWD bindings, mappings, generated checks."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "contracts": ["generate_checks", "read_contract_rules", "render_contract", "rules_for"],
        "diff": ["StandardDiff", "diff"],
        "model": ["Binding", "DataElement", "Relation", "StandardNotFoundError", "ValueDomain"],
        "registry": ["Registry"],
        "rules": ["CHECK_TYPES", "Rule", "derive_rules"],
    },
)
