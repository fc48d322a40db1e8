"""Sensors and schedules: the landing zone, standard changes."""
