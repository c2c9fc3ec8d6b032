"""rootloop_lab: a real small microservice system on loopback, with faults to inject.

``Lab(root).up()`` / ``.inject(name)`` / ``.status()`` / ``.down()``; the
scenarios and their ground truth are in ``rootloop_lab.scenarios.SCENARIOS``.
"""

from rootloop_lab.lab import Lab, LabStatus, default_root

__all__ = ["Lab", "LabStatus", "default_root"]
