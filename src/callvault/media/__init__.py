"""Sans-IO audio: the Ogg Opus archive format, RTP payload codecs, mixing helpers.

No sockets, no asyncio, no database: everything here turns bytes and numpy
arrays into bytes and numpy arrays, and reports bad input as ``ValueError``.
"""
