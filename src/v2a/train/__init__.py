"""Training: the generic loop utilities (DDP, time budget, resume, logs) and one trainer per network."""
