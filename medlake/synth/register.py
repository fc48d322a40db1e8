"""A patient register with known truth, straight into a frame in the DWD ``patient`` shape, for linking the EMPI
against (its tests and ``python -m medlake.bench empi``) without generating whole deliveries.

The persons and their registrations are :func:`medlake.synth.population.build_population`'s, the same the
generator delivers: a person registered at several hospitals has one record per hospital, and the secondary records
carry the errors linkage must survive (homophone typos and pinyin spellings of the name, transposed or missing ID
digits, legacy 15-digit IDs, changed or missing phones, missing addresses and birth dates); twins share birth date,
region and address but not given name or ID.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from medlake.reference import institutions
from medlake.synth.config import SynthConfig
from medlake.synth.population import build_population

__all__ = ["SyntheticRegister", "synthetic_register"]

_COLUMNS = ("institution_code", "patient_id", "name", "id_number", "birth_date", "sex_code", "phone", "address",
            "region_code", "updated_at")


@dataclass(frozen=True)
class SyntheticRegister:
    """Records in the DWD ``patient`` shape plus ``institution_code``; truth maps records to persons."""

    records: pl.DataFrame
    truth: pl.DataFrame  # institution_code, patient_id, person_id


def synthetic_register(
    n_records: int, *, duplicate_rate: float = 0.3, twin_rate: float = 0.01, hospitals: int = 8, seed: int = 7,
) -> SyntheticRegister:
    """``n_records`` registrations at ``hospitals`` hospitals, in random order: about ``duplicate_rate`` of the
    persons are registered at a second hospital (a quarter of those at a third), ``twin_rate`` are twins."""
    patients = int(n_records / (1 + duplicate_rate)) + 10  # a person has 1 + about 1.2 × duplicate_rate records
    while True:
        config = SynthConfig(patients=patients, institutions=hospitals, seed=seed,
                             multi_registration=duplicate_rate, twin_share=twin_rate, progress=False)
        rng = np.random.default_rng(seed)
        registrations = build_population(config, institutions(hospitals), rng).registrations
        if registrations.height >= n_records:
            break
        patients = int(patients * 1.1) + 1
    registrations = registrations.head(n_records)  # whole persons, but for the last one
    months = pl.Series(rng.integers(1, 13, registrations.height)).cast(pl.Utf8).str.zfill(2)
    registrations = registrations.with_columns(
        pl.col("birth_date").str.to_date(strict=False),
        pl.format("2024-{}-01 08:00:00", months).alias("updated_at"),
    ).sample(fraction=1.0, shuffle=True, seed=seed)
    return SyntheticRegister(records=registrations.select(_COLUMNS),
                             truth=registrations.select("institution_code", "patient_id", "person_id"))
