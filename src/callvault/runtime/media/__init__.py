"""RTP capture, spooling, finalisation and crash recovery for the SIPREC recorder."""

from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.session import MediaSession

__all__ = ["MediaEngine", "MediaSession"]
