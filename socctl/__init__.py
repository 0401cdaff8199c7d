"""socctl: infrastructure and security operations for a national social-insurance agency.

The package is a typed library; ``socctl.cli`` is a thin click layer on top of it.
"""

__version__ = "0.1.0"
