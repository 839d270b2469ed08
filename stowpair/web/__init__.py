"""HTTP plumbing shared by every listener (REST API, archive ingest, stowrsd, emulator):
error answers, the guard around every resource, slow-client timeouts, cross-site checks.
"""
