"""Loa's processes: the `loa` command line, the all-in-one server and the reference agent."""
