"""The SIPREC recording server's asyncio side: transports and the user agent server."""
