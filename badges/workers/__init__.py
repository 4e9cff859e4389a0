"""Worker processes, and the data converter with its encryption codec that clients share."""
