"""The evaluation question set and its runner (`python -m eval`)."""
