"""Synthetic multi-institution source generator: what hospital front-end machines and the insurance bureau
drop into the landing zone, plus the truth needed to evaluate EMPI, quality checks and transcoding."""

from medlake.synth.config import DefectRates, SynthConfig, SynthConfigError, SynthReport
from medlake.synth.generator import generate

__all__ = ["DefectRates", "SynthConfig", "SynthConfigError", "SynthReport", "generate"]
