-- One row per laboratory result, with the patient of its encounter and whether the value lies outside the
-- reference range reported with it.
with lab_results as (
    select * from {{ ref('stg_dwd__lab_results') }}
),

encounters as (
    select institution_code, encounter_id, patient_id from {{ ref('stg_dwd__encounters') }}
)

select
    lab_results.institution_code,
    lab_results.result_id,
    lab_results.encounter_id,
    encounters.patient_id,
    lab_results.test_code,
    lab_results.test_name,
    lab_results.result_value,
    lab_results.unit,
    lab_results.ref_low,
    lab_results.ref_high,
    case
        when lab_results.result_value is null then null
        when lab_results.result_value < lab_results.ref_low then 'L'
        when lab_results.result_value > lab_results.ref_high then 'H'
        when lab_results.ref_low is null and lab_results.ref_high is null then null
        else 'N'
    end as abnormal_flag,
    lab_results.report_time,
    cast(lab_results.report_time as date) as report_date
from lab_results
left join encounters
    on lab_results.institution_code = encounters.institution_code
    and lab_results.encounter_id = encounters.encounter_id
