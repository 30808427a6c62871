"""Speech analytics core (sans-IO): transcripts, turns, talk metrics, PII, phrases, sentiment.

Pure functions over the transcript model in :mod:`callvault.speech.transcript`;
no engines, no database, no files.
"""
