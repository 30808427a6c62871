"""Webhook delivery inside ``callvault serve``."""
