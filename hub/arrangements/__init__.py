"""Mutual-recognition arrangements: reference data, models, and the services on them."""
