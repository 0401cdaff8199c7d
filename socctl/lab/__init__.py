"""The lab: a small copy of the agency's network in network namespaces, real daemons."""
