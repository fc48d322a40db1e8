-- The current state of every insurance settlement (latest revision), with its month and payment shares.
with settlements as (
    select * from {{ ref('stg_dwd__settlements') }}
)

select
    setl_id,
    psn_no,
    medins_code,
    encounter_id,
    setl_type,
    setl_time,
    {{ year_month('setl_time') }} as settlement_month,
    total_amount,
    fund_paid,
    self_paid,
    setl_status,
    setl_status = '2' as is_refunded,
    revision,
    -- a DOUBLE on both engines (DuckDB divides decimals in DOUBLE; Spark would keep a DECIMAL)
    case when total_amount > 0 then round(cast(fund_paid as double) / cast(total_amount as double), 4) end
        as fund_share
from settlements
