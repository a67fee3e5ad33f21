"""tracking services: functions that change things."""
