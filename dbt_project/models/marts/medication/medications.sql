-- Drug orders (prescriptions) in the hospital's local codes, with the visit they belong to.
with orders as (
    select * from {{ ref('stg_dwd__order_items') }}
),

encounters as (
    select * from {{ ref('stg_dwd__encounters') }}
)

select
    orders.institution_code,
    orders.order_id,
    orders.encounter_id,
    encounters.patient_id,
    encounters.encounter_type,
    orders.local_item_code,
    orders.item_name,
    orders.quantity,
    orders.unit_price,
    orders.amount,
    orders.order_time,
    cast(orders.order_time as date) as order_date
from orders
left join encounters
    on orders.institution_code = encounters.institution_code
    and orders.encounter_id = encounters.encounter_id
where orders.item_category = 'drug'
