"""Recognition: verify (as-of resolution with reasons), identity matching, crosswalk,
cross-programme entities and human judgements.

Service functions take a SQLAlchemy `Session` and never touch Flask, so that the CLI, the
partner API and benchmarks share them:

* :func:`hub.recognition.service.verify`, :func:`~hub.recognition.service.verify_many`
* :func:`hub.recognition.matching.match`
* :func:`hub.recognition.crosswalk.crosswalk`
* :func:`hub.recognition.entities.entity_of`, :func:`~hub.recognition.entities.add_judgement`
"""
