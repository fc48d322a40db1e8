{#- SQL that differs between DuckDB (MEDLAKE_ENGINE=polars, dbt-duckdb) and Spark SQL (MEDLAKE_ENGINE=spark,
    dbt-spark). Models call these (or dbt's own cross-database macros, e.g. dbt.datediff) instead of dialect
    functions, so one model file runs on both engines and gives the same values and types. -#}

{% macro year_month(timestamp_expr) -%}
    {{ return(adapter.dispatch('year_month', 'medlake')(timestamp_expr)) }}
{%- endmacro %}

{% macro default__year_month(timestamp_expr) -%}
    strftime({{ timestamp_expr }}, '%Y-%m')
{%- endmacro %}

{% macro spark__year_month(timestamp_expr) -%}
    date_format({{ timestamp_expr }}, 'yyyy-MM')
{%- endmacro %}

{#- ``count(*) filter (where ...)`` is DuckDB/Postgres only; this is the same count in standard SQL (BIGINT on both). -#}
{% macro count_where(condition) -%}
    count(case when {{ condition }} then 1 end)
{%- endmacro %}

{#- Whole days from one date to another, as BIGINT on both engines (Spark's datediff returns INT). -#}
{% macro days_between(start_date, end_date) -%}
    cast({{ dbt.datediff(start_date, end_date, 'day') }} as bigint)
{%- endmacro %}

{#- Integer division truncating toward zero: DuckDB `//`, Spark `div`. -#}
{% macro integer_divide(dividend, divisor) -%}
    {{ return(adapter.dispatch('integer_divide', 'medlake')(dividend, divisor)) }}
{%- endmacro %}

{% macro default__integer_divide(dividend, divisor) -%}
    ({{ dividend }}) // ({{ divisor }})
{%- endmacro %}

{% macro spark__integer_divide(dividend, divisor) -%}
    ({{ dividend }}) div ({{ divisor }})
{%- endmacro %}

{#- The ratio of two amounts with 4 decimals (Decimal(18,4)), rounded half up to 4 places, as DOUBLE: computed in
    integers (ten-thousandths) so both engines give the same bits. Rounding a DOUBLE quotient would not: DuckDB
    divides decimals in DOUBLE and rounds the scaled double, Spark divides exactly and rounds the decimal. -#}
{% macro amount_ratio(numerator, denominator) -%}
    {%- set num = 'cast(' ~ numerator ~ ' * 10000 as bigint)' -%}
    {%- set den = 'cast(' ~ denominator ~ ' * 10000 as bigint)' -%}
    cast({{ integer_divide('2 * ' ~ num ~ ' * 10000 + ' ~ den, '2 * ' ~ den) }} as double) / 10000
{%- endmacro %}
