"""Conditioning encoders: what is visible (semantic), what the prompt says (text), and their disk cache.

- ``semantic``: EfficientNet-Lite0 per-frame features at 8 fps plus a projection into the text space.
- ``text``: all-MiniLM-L6-v2 token and pooled prompt features; empty prompts become null rows.
- ``cache``: ``extract_features`` stores both into training shards; ``read_semantic``/``read_text`` load them.
- ``onnx_runtime``: export fixed networks to ONNX once and run them with ONNX Runtime.
"""
