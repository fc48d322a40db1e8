-- One row per diagnosis, with its ICD-10 chapter letter, the visit date and who the patient is.
with diagnoses as (
    select * from {{ ref('stg_dwd__diagnoses') }}
),

encounters as (
    select * from {{ ref('stg_dwd__encounters') }}
),

patients as (
    select * from {{ ref('stg_dwd__patients') }}
)

select
    diagnoses.institution_code,
    diagnoses.encounter_id,
    diagnoses.diag_seq,
    diagnoses.diag_code,
    diagnoses.diag_name,
    substr(diagnoses.diag_code, 1, 3) as icd10_category,
    substr(diagnoses.diag_code, 1, 1) as icd10_chapter_letter,
    diagnoses.diag_type = '1' as is_primary,
    encounters.patient_id,
    encounters.encounter_type,
    cast(coalesce(diagnoses.diag_time, encounters.admit_time) as date) as diagnosis_date,
    patients.sex_code,
    patients.region_code
from diagnoses
left join encounters
    on diagnoses.institution_code = encounters.institution_code
    and diagnoses.encounter_id = encounters.encounter_id
left join patients
    on encounters.institution_code = patients.institution_code
    and encounters.patient_id = patients.patient_id
