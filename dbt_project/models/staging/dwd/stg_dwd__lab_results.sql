with source as (
    select * from {{ source('dwd', 'lab_result') }}
),

renamed as (
    select
        institution_code,
        result_id,
        encounter_id,
        test_code,
        test_name,
        result_value,
        unit,
        ref_low,
        ref_high,
        report_time
    from source
)

select * from renamed
