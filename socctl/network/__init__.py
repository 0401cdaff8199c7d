"""Network configuration management (render, diff, push, backup, compliance) over Netmiko,
and SNMPv3 polling (pysnmp). Drivers, one file per platform, live in ``drivers/``."""
