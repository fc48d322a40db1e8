"""Synthetic multi-institution source generator: what hospital front-end machines and the insurance bureau
drop into the landing zone, plus the truth needed to evaluate EMPI, quality checks and transcoding."""

import lazy_loader

# Each name's module is imported on first use, so using one part never loads the others' libraries.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["DefectRates", "SynthConfig", "SynthConfigError", "SynthReport"],
        "dwd": ["synthetic_dwd"],
        "generator": ["generate"],
        "register": ["SyntheticRegister", "synthetic_register"],
    },
)
