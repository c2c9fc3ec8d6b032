"""rootloop: an autonomous debugging harness for microservices."""

__version__ = "0.1.0"
