"""Synthetic AEO registries and node simulators for the demo, tests and benchmarks.

Public API:

* :func:`hub.sim.registry.generate_registry`, :func:`~hub.sim.registry.iter_records`,
  :func:`~hub.sim.registry.iter_ground_truth`, :func:`~hub.sim.generator.programme_codes`;
* :class:`hub.sim.registry.Registry` (``advance``, ``apply``, ``iter_records``,
  ``company_of``) and the change kinds in :data:`hub.sim.churn.CHANGE_KINDS`;
* :class:`hub.sim.server.NodeServer` and :func:`~hub.sim.server.run_node_server`, with
  :class:`hub.sim.faults.Faults`.
"""

from __future__ import annotations
