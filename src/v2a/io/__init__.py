"""Reading and writing media: video frames by timestamp, audio files, muxing audio into video."""
