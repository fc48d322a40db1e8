with source as (
    select * from {{ source('dwd', 'patient') }}
),

renamed as (
    select
        institution_code,
        patient_id,
        name as patient_name,
        id_number,
        sex_code,
        birth_date,
        phone,
        region_code,
        address,
        updated_at
    from source
)

select * from renamed
