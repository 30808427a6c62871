"""RTP capture, spooling, finalisation and crash recovery for the SIPREC recorder.

The package imports nothing itself: render workers and the fork server import
single modules of it (``metrics``, ``worker``) and must not pay for the whole
engine. Import :class:`~callvault.runtime.media.engine.MediaEngine` and
:class:`~callvault.runtime.media.session.MediaSession` from their modules.
"""
