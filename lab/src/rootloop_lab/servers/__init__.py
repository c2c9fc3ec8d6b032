"""Throwaway servers on loopback for the lab, the tests and the benchmarks.

``postgres`` and ``redis`` launch the Debian packages' real servers; ``emulator`` runs
moto's AWS server as a separate process. None of this is the harness: rootloop's skills
reach these servers exactly as they would reach production ones, through their DSNs, URLs
and endpoints.
"""
