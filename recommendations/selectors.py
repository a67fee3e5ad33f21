"""recommendations selectors: functions that read."""
