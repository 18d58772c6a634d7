"""Configuration of AEO Hub: defaults, testing and production profiles, and reference data.

`default.py` holds every setting with its default; `testing.py` and `production.py`
override a few. `hub.settings.load_config` layers them and then applies `AEOHUB_*`
environment variables.
"""
