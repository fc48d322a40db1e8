-- One row per encounter with the patient's sex and age, length of stay and primary diagnosis.
with encounters as (
    select * from {{ ref('stg_dwd__encounters') }}
),

patients as (
    select * from {{ ref('stg_dwd__patients') }}
),

ranked_diagnoses as (
    select
        institution_code,
        encounter_id,
        diag_code,
        row_number() over (
            partition by institution_code, encounter_id
            order by case when diag_type = '1' then 0 else 1 end, diag_seq
        ) as diagnosis_rank
    from {{ ref('stg_dwd__diagnoses') }}
),

primary_diagnoses as (  -- no QUALIFY: Spark SQL has none
    select institution_code, encounter_id, diag_code as primary_diag_code
    from ranked_diagnoses
    where diagnosis_rank = 1
)

select
    encounters.institution_code,
    encounters.encounter_id,
    encounters.patient_id,
    encounters.encounter_type,
    encounters.dept_code,
    encounters.dept_name,
    encounters.admit_time,
    encounters.discharge_time,
    cast(encounters.admit_time as date) as visit_date,
    case
        when encounters.encounter_type = 'inpatient' and encounters.discharge_time >= encounters.admit_time
            then greatest(
                {{ days_between('cast(encounters.admit_time as date)', 'cast(encounters.discharge_time as date)') }}, 1
            )
    end as length_of_stay_days,
    patients.sex_code,
    cast(floor({{ days_between('patients.birth_date', 'cast(encounters.admit_time as date)') }} / 365.25) as integer)
        as age_at_visit,
    primary_diagnoses.primary_diag_code
from encounters
left join patients
    on encounters.institution_code = patients.institution_code
    and encounters.patient_id = patients.patient_id
left join primary_diagnoses
    on encounters.institution_code = primary_diagnoses.institution_code
    and encounters.encounter_id = primary_diagnoses.encounter_id
