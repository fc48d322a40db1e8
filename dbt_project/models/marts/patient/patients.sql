-- One row per registered patient (per institution), with visit history summarised.
with patients as (
    select * from {{ ref('stg_dwd__patients') }}
),

encounters as (
    select * from {{ ref('stg_dwd__encounters') }}
),

visits as (
    select
        institution_code,
        patient_id,
        count(*) as encounter_count,
        {{ count_where("encounter_type = 'inpatient'") }} as admission_count,
        min(admit_time) as first_visit_at,
        max(admit_time) as last_visit_at
    from encounters
    group by institution_code, patient_id
)

select
    patients.institution_code,
    patients.patient_id,
    patients.patient_name,
    patients.id_number,
    patients.sex_code,
    patients.birth_date,
    patients.region_code,
    substr(patients.region_code, 1, 2) as province_code,
    coalesce(visits.encounter_count, 0) as encounter_count,
    coalesce(visits.admission_count, 0) as admission_count,
    visits.first_visit_at,
    visits.last_visit_at,
    cast(floor({{ days_between('patients.birth_date', 'cast(visits.last_visit_at as date)') }} / 365.25) as integer)
        as age_at_last_visit
from patients
left join visits
    on patients.institution_code = visits.institution_code
    and patients.patient_id = visits.patient_id
