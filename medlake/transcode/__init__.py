"""Transcoding: local drug / service-item / diagnosis codes → national codes, with a review table for the rest."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "errors": ["TranscodeConfigError", "TranscodeError"],
        "mappings": ["FrameMappings", "MappingSource", "RegistryMappings"],
        "operator": ["CATEGORIES", "TranscodeConfig", "TranscodeOperator"],
        "review": ["review_path"],
        "suggest": ["pinyin_reading", "suggest_codes"],
    },
)
