with source as (
    select * from {{ source('dwd', 'order_item') }}
),

renamed as (
    select
        institution_code,
        order_id,
        encounter_id,
        lower(item_category) as item_category,
        local_item_code,
        item_name,
        quantity,
        unit_price,
        amount,
        order_time
    from source
)

select * from renamed
