with source as (
    select * from {{ source('dwd', 'diagnosis') }}
),

renamed as (
    select
        institution_code,
        encounter_id,
        diag_seq,
        upper(diag_code) as diag_code,
        diag_name,
        diag_type,
        diag_time
    from source
)

select * from renamed
