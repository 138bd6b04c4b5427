"""hoptel."""
