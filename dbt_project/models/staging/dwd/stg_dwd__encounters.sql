with source as (
    select * from {{ source('dwd', 'encounter') }}
),

renamed as (
    select
        institution_code,
        encounter_id,
        patient_id,
        encounter_type,
        dept_code,
        dept_name,
        admit_time,
        discharge_time,
        doctor_id
    from source
)

select * from renamed
