"""Thin Dagster jobs that are not asset materializations (table maintenance); the logic lives in the library."""
