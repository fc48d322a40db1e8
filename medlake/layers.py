"""The four layers of the lake: one mapping from layer to asset-key prefix, group and folder."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Layer"]


class Layer(StrEnum):
    ODS = "ods"  # operational data store: as delivered, plus load columns
    DWD = "dwd"  # data warehouse detail: typed, cleaned, standardized, merged on business keys
    THEME = "theme"  # subject areas modeled in dbt (patient, encounter, diagnosis, medication, settlement)
    METRIC = "metric"  # indicators computed from themes

    @property
    def group(self) -> str:
        return self.value

    @property
    def key_prefix(self) -> list[str]:
        return [self.value]

    @property
    def description(self) -> str:
        return {
            Layer.ODS: "Source tables as delivered by front-end machines, with load columns",
            Layer.DWD: "Typed, standardized detail tables upserted on business keys",
            Layer.THEME: "Subject-area tables built by dbt",
            Layer.METRIC: "Indicators for dashboards and supervision",
        }[self]
