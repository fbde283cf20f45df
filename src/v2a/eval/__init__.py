"""Evaluation: metrics that score any audio for a video the same way (model output or ground truth), the
manifest runner behind ``v2a eval``, trivial baselines and the HTML report."""
