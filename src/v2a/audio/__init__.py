"""Audio representation: the AudioSpec, mel features, the latent codec and the vocoder."""
