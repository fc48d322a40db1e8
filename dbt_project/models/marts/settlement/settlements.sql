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
    case when total_amount > 0 then {{ amount_ratio('fund_paid', 'total_amount') }} end as fund_share
from settlements
