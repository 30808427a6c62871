"""The ``Transcriber`` port: speech recognition engines behind one interface."""
