"""Packet captures and the wire below SIP, sans-IO: capture files, link layers, IP, UDP, TCP.

Every decoder takes bytes and returns values; malformed input raises
``ValueError`` with a message naming what is wrong and where. Nothing here
reads a file or a socket: :mod:`callvault.runtime.passive` does.
"""
