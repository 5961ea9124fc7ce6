"""Imported by Python at start-up when this folder is on PYTHONPATH: with COURSE_NETWORK_GUARD=1 the
process refuses non-loopback network access (see netguard.py). The test command sets both."""
import os

if os.environ.get("COURSE_NETWORK_GUARD") == "1":
    import netguard
    netguard.install()
