{% test unique_combination_of_columns(model, columns) %}
-- Rows whose combination of key columns occurs more than once (a composite-key uniqueness test without dbt-utils).
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
