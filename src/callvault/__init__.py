"""callvault: call recording and compliance platform for contact centers."""

__version__ = "0.1.0"
