"""Fixtures of the encoder tests: the packaged encoders, loaded once per session.

They use the default cache folder (``$V2A_CACHE_DIR`` or ``~/.cache/v2a``) for the exported graph and the
class-name embeddings: entries are keyed by content and written atomically, so sharing them is safe and
saves the one-off export (a few seconds) and class-name encoding (about ten seconds) on later runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from v2a.encoders.semantic import SemanticEncoder, fit_image
from v2a.encoders.text import TextEncoder


@pytest.fixture(scope="session")
def text_encoder() -> TextEncoder:
    return TextEncoder(device="cpu")


@pytest.fixture(scope="session")
def semantic_encoder(text_encoder) -> SemanticEncoder:
    return SemanticEncoder(backend="onnx", device="cpu", text_encoder=text_encoder)


@pytest.fixture(scope="session")
def cat_and_coffee() -> np.ndarray:
    """(2, 224, 224, 3) uint8: scikit-image's cat (Chelsea) and cup of coffee, fitted to the encoder."""
    return np.stack([fit_image(data.chelsea()), fit_image(data.coffee())])
