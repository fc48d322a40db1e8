with source as (
    select * from {{ source('dwd', 'settlement') }}
),

renamed as (
    select
        setl_id,
        psn_no,
        id_number,
        medins_code,
        encounter_id,
        setl_type,
        setl_time,
        begin_date,
        end_date,
        total_amount,
        fund_paid,
        self_paid,
        setl_status,
        revision
    from source
)

select * from renamed
