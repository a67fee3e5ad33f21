"""recommendations services: functions that change things."""
