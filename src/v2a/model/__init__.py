"""Networks and their checkpoints: the generator, flow matching, size presets, safetensors checkpoints."""
