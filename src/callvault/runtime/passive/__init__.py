"""Passive capture: calls recorded from a mirrored port or a packet capture file.

:mod:`.recorder` turns captured frames into journals (one per call leg),
:mod:`.live` feeds it from network interfaces, :mod:`.pcap_import` from
capture files; the journals are rendered and sealed by the media engine's
one renderer and sealer, as SIPREC calls are.
"""
