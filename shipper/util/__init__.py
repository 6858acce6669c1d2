"""Small utilities with no knowledge of the pipeline: time zones, URLs, memory tuning."""
