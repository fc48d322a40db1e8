"""What to generate (SynthConfig, DefectRates) and what was generated (SynthReport)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta

from medlake.errors import MedlakeError

__all__ = ["DefectRates", "SynthConfig", "SynthConfigError", "SynthReport"]


class SynthConfigError(MedlakeError):
    """A generator setting is out of range; the message names the setting."""


@dataclass(frozen=True)
class DefectRates:
    """Per-row probability of each injected defect type (before scaling by ``SynthConfig.defect_rate``).

    A row gets at most one defect. Types apply only to tables where they make sense (e.g. ``malformed_line``
    and ``undecodable`` only to CSV files); ``SynthReport.defects`` counts what was injected.
    """

    missing_required: float = 0.004
    invalid_code: float = 0.004  # bad ICD, unknown region, bad sex code
    impossible_date: float = 0.002  # discharge before admit, birth in the future, 2026-02-30
    out_of_range: float = 0.002  # negative amounts, age 150
    duplicate: float = 0.003  # exact duplicate rows
    contradiction: float = 0.003  # sex vs ID, birth date vs ID, fund_paid > total
    malformed_line: float = 0.0005  # CSV line with the wrong field count
    undecodable: float = 0.00005  # a byte sequence the file's encoding cannot decode

    def scaled(self, factor: float) -> DefectRates:
        return replace(self, **{f.name: getattr(self, f.name) * factor for f in fields(self)})

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SynthConfig:
    """Settings of one generation run. ``encounters`` is the total over the window (default 3 per patient)."""

    patients: int = 1000
    days: int = 7
    institutions: int = 3
    seed: int = 42
    start_date: date = date(2026, 1, 1)
    encounters: int | None = None
    defect_rate: float = 1.0
    history_days: int = 30
    defect_rates: DefectRates = field(default_factory=DefectRates)
    multi_registration: float = 0.18  # share of persons registered at a second (or third) hospital
    twin_share: float = 0.01  # share of persons who are a twin of another
    insured_share: float = 0.92
    settled_share: float = 0.97  # encounters of insured persons that get a settlement
    revision_share: float = 0.03  # settlements revised (refund or re-settlement) later
    patient_update_share: float = 0.02  # patient rows re-delivered later with a changed phone/address
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("patients", "days", "institutions"):
            if getattr(self, name) < 1:
                raise SynthConfigError(f"SynthConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.encounters is not None and self.encounters < 0:
            raise SynthConfigError(f"SynthConfig.encounters must be >= 0, got {self.encounters}")
        if self.history_days < 0:
            raise SynthConfigError(f"SynthConfig.history_days must be >= 0, got {self.history_days}")
        if self.defect_rate < 0:
            raise SynthConfigError(f"SynthConfig.defect_rate must be >= 0, got {self.defect_rate}")
        for name in (
            "multi_registration",
            "twin_share",
            "insured_share",
            "settled_share",
            "revision_share",
            "patient_update_share",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SynthConfigError(f"SynthConfig.{name} must be within [0, 1], got {getattr(self, name)}")
        if sum(self.effective_rates.as_dict().values()) > 0.5:
            raise SynthConfigError(
                f"SynthConfig.defect_rate={self.defect_rate}: total defect probability per row would exceed 0.5"
            )

    @property
    def total_encounters(self) -> int:
        return self.encounters if self.encounters is not None else 3 * self.patients

    @property
    def effective_rates(self) -> DefectRates:
        return self.defect_rates.scaled(self.defect_rate)

    @property
    def end_date(self) -> date:
        """The last business date of the window (inclusive)."""
        return self.start_date + timedelta(days=self.days - 1)


@dataclass
class SynthReport:
    """What a run wrote: rows per table (as delivered, incl. duplicates), files, batches, defects, seconds."""

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    batches: int = 0
    defects: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    landing: str = ""
    truth: str = ""

    def add_rows(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n
