"""dbt integration: the dbt-duckdb plugin that lands marts as Delta tables, and the dbt project's location."""
