"""tracking selectors: functions that read."""
