"""catalog selectors: functions that read."""
