"""The landing contract: which tables front-end machines deliver, their columns, keys and types.

Everything downstream is built from these specs: the synthetic generator writes them, ODS lands them as text,
DWD types them and merges on ``business_key`` (always prefixed by the delivering institution), and the
manifest reconciliation sums ``amount_columns``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["SOURCES", "Column", "SourceTable", "source"]

Dtype = Literal["string", "int", "decimal", "date", "datetime"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: Dtype = "string"
    required: bool = False
    label: str = ""  # the Chinese name a hospital's data dictionary uses


@dataclass(frozen=True)
class SourceTable:
    name: str
    label: str
    delivered_by: Literal["hospital", "insurance"]
    columns: tuple[Column, ...]
    business_key: tuple[str, ...]
    version_column: str  # the delivery with the larger value wins in a MERGE
    amount_columns: tuple[str, ...] = field(default=())
    # DWD partitions the table by the business key without its last N characters (blocks of consecutive IDs), so
    # a partition is a function of the key (a row never moves) and revisions of recent records touch few files.
    key_block_chars: int = 0

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _c(name: str, dtype: Dtype = "string", required: bool = False, label: str = "") -> Column:
    return Column(name, dtype, required, label)


SOURCES: tuple[SourceTable, ...] = (
    SourceTable(
        "patient", "患者基本信息", "hospital",
        (
            _c("patient_id", required=True, label="患者ID"),
            _c("name", required=True, label="姓名"),
            _c("id_number", label="身份证件号码"),
            _c("sex_code", label="性别代码"),
            _c("birth_date", "date", label="出生日期"),
            _c("phone", label="联系电话"),
            _c("region_code", label="户籍地区划代码"),
            _c("address", label="现住址"),
            _c("updated_at", "datetime", required=True, label="更新时间"),
        ),
        business_key=("patient_id",), version_column="updated_at",
    ),
    SourceTable(
        "encounter", "就诊记录", "hospital",
        (
            _c("encounter_id", required=True, label="就诊流水号"),
            _c("patient_id", required=True, label="患者ID"),
            _c("encounter_type", required=True, label="就诊类型"),  # outpatient / emergency / inpatient
            _c("dept_code", label="科室代码"),
            _c("dept_name", label="科室名称"),
            _c("admit_time", "datetime", required=True, label="就诊/入院时间"),
            _c("discharge_time", "datetime", label="出院时间"),
            _c("doctor_id", label="医师工号"),
            _c("updated_at", "datetime", required=True, label="更新时间"),
        ),
        business_key=("encounter_id",), version_column="updated_at",
    ),
    SourceTable(
        "diagnosis", "诊断记录", "hospital",
        (
            _c("encounter_id", required=True, label="就诊流水号"),
            _c("diag_seq", "int", required=True, label="诊断序号"),
            _c("diag_code", required=True, label="诊断代码(ICD-10)"),
            _c("diag_name", label="诊断名称"),
            _c("diag_type", label="诊断类别"),  # 1 primary, 2 secondary
            _c("diag_time", "datetime", label="诊断时间"),
            _c("updated_at", "datetime", required=True, label="更新时间"),
        ),
        business_key=("encounter_id", "diag_seq"), version_column="updated_at",
    ),
    SourceTable(
        "order_item", "医嘱/处方明细", "hospital",
        (
            _c("order_id", required=True, label="医嘱明细ID"),
            _c("encounter_id", required=True, label="就诊流水号"),
            _c("item_category", required=True, label="项目类别"),  # drug / service
            _c("local_item_code", required=True, label="院内项目编码"),
            _c("item_name", label="项目名称"),
            _c("quantity", "decimal", label="数量"),
            _c("unit_price", "decimal", label="单价"),
            _c("amount", "decimal", label="金额"),
            _c("order_time", "datetime", label="开立时间"),
            _c("updated_at", "datetime", required=True, label="更新时间"),
        ),
        business_key=("order_id",), version_column="updated_at", amount_columns=("amount",),
    ),
    SourceTable(
        "lab_result", "检验结果", "hospital",
        (
            _c("result_id", required=True, label="检验结果ID"),
            _c("encounter_id", required=True, label="就诊流水号"),
            _c("test_code", required=True, label="检验项目代码"),
            _c("test_name", label="检验项目名称"),
            _c("result_value", "decimal", label="检验结果值"),
            _c("unit", label="单位"),
            _c("ref_low", "decimal", label="参考值下限"),
            _c("ref_high", "decimal", label="参考值上限"),
            _c("report_time", "datetime", label="报告时间"),
            _c("updated_at", "datetime", required=True, label="更新时间"),
        ),
        business_key=("result_id",), version_column="updated_at",
    ),
    SourceTable(
        "settlement", "医保结算清单", "insurance",
        (
            _c("setl_id", required=True, label="结算ID"),
            _c("psn_no", required=True, label="人员编号"),
            _c("psn_name", label="人员姓名"),
            _c("id_number", label="证件号码"),
            _c("medins_code", required=True, label="定点医药机构编号"),
            _c("encounter_id", label="就诊ID"),
            _c("setl_type", label="结算类型"),  # outpatient / inpatient
            _c("setl_time", "datetime", required=True, label="结算时间"),
            _c("begin_date", "date", label="结算开始日期"),
            _c("end_date", "date", label="结算结束日期"),
            _c("total_amount", "decimal", required=True, label="医疗费总额"),
            _c("fund_paid", "decimal", required=True, label="基金支付总额"),
            _c("self_paid", "decimal", label="个人自付"),
            _c("setl_status", label="结算状态"),  # 1 normal, 2 refunded, 3 re-settled
            _c("revision", "int", required=True, label="修订版本"),
            _c("updated_at", "datetime", required=True, label="更新时间"),
        ),
        business_key=("setl_id",), version_column="revision",
        amount_columns=("total_amount", "fund_paid", "self_paid"), key_block_chars=5,
    ),
)

_BY_NAME = {s.name: s for s in SOURCES}


def source(name: str) -> SourceTable:
    """The spec of one source table by name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown source table {name!r}; known: {', '.join(_BY_NAME)}") from None
