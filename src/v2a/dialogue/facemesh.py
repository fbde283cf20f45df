"""MediaPipe's face mesh, driven through its low-level graph API: lip landmarks of the faces in a frame.

``mediapipe==0.10.21`` ships the tflite models in its wheel. Its ``mp.solutions`` wrapper fails with
protobuf 7 (it edits graph options through ``FieldDescriptor.label``, which newer protobuf removed), so
the ``face_landmark_front_cpu`` graph is built and run here directly with ``CalculatorGraph``; this works
with numpy 2 and protobuf 7 although the wheel's metadata pins numpy<2 and protobuf<5. The face
detector's score threshold is lowered from 0.5 to 0.3 (see ``_graph_config``).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from v2a.errors import ModelUnavailableError

__all__ = ["MAX_FACES", "FaceMesh", "quiet_stderr"]

MAX_FACES = 2
_LIPS = (13, 14, 61, 291)  # inner upper lip, inner lower lip, left and right mouth corners
_FRAME_US = 40_000  # graph timestamps must increase; frames are fed 40 ms apart whatever their real time
_GRAPH = "mediapipe/modules/face_landmark/face_landmark_front_cpu.binarypb"
_DETECTOR = (
    "facedetectionshortrangecpu__facedetectionshortrange__facedetection__TensorsToDetectionsCalculator"
)
_MIN_FACE_SCORE = 0.3


@functools.lru_cache(maxsize=1)
def _mediapipe() -> Any:
    """The mediapipe module (imported once, its start-up chatter on stderr hidden)."""
    try:
        with quiet_stderr():
            import mediapipe
            from mediapipe.python._framework_bindings import resource_util
    except ImportError:
        raise ModelUnavailableError(
            "mouth activity needs mediapipe 0.10.21 (face mesh): pip install --no-deps mediapipe==0.10.21 attrs "
            "(make install does)"
        ) from None
    resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mediapipe.__file__)))
    return mediapipe


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (the C++ logging of mediapipe's graph start-up) for a moment."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to hide
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class FaceMesh:
    """MediaPipe's face landmark graph in video mode (faces are tracked between frames)."""

    def __init__(self, max_faces: int = MAX_FACES, *, attention: bool = False):
        mp = _mediapipe()
        from mediapipe.framework.formats import landmark_pb2
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import _packet_getter, calculator_graph, image_frame

        self._landmarks, self._creator, self._getter = landmark_pb2, packet_creator, _packet_getter
        self._srgb = image_frame.ImageFormat.SRGB
        root = os.path.dirname(os.path.dirname(mp.__file__))
        self._out: dict[str, Any] = {}
        self._graph = calculator_graph.CalculatorGraph(graph_config=_graph_config(os.path.join(root, _GRAPH)))
        self._graph.observe_output_stream(
            "multi_face_landmarks", lambda name, packet: self._out.__setitem__(name, packet), True
        )
        self._graph.start_run({
            "num_faces": packet_creator.create_int(max_faces),
            # the attention model's refined lips measured worse (drawn faces: r 0.5-0.7 vs 0.7-0.9 with the
            # true mouth; Megamind.avi: lip_corr 0.16 vs 0.20 with its own speech)
            "with_attention": packet_creator.create_bool(attention),
            "use_prev_landmarks": packet_creator.create_bool(True),  # track between frames
        })  # fmt: skip
        self._count = 0

    def lips(self, frame: np.ndarray) -> np.ndarray:
        """(F, 4, 2) pixel positions of the lip landmarks 13, 14, 61, 291 of each face in an RGB frame."""
        self._out.clear()
        self._count += 1
        packet = self._creator.create_image_frame(image_format=self._srgb, data=np.ascontiguousarray(frame))
        self._graph.add_packet_to_input_stream("image", packet.at(self._count * _FRAME_US))
        self._graph.wait_until_idle()
        result = self._out.get("multi_face_landmarks")
        if result is None or result.is_empty():
            return np.zeros((0, 4, 2), np.float32)
        h, w = frame.shape[:2]
        faces = []
        for blob in self._getter._get_serialized_proto_list(result):
            marks = self._landmarks.NormalizedLandmarkList()
            marks.ParseFromString(blob)
            faces.append([(marks.landmark[k].x * w, marks.landmark[k].y * h) for k in _LIPS])
        return np.asarray(faces, np.float32)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._graph.close()


def _graph_config(path: str) -> Any:
    """The face mesh graph with the face detector's score threshold lowered to ``_MIN_FACE_SCORE``.

    The default (0.5) misses many drawn and heavily compressed faces (on four held-out Foley-world
    talking heads the face was found in 1-21 % of the frames; at 0.3 one of them rose from 15 to 61 %),
    while random pictures still give no face: the landmark model's own presence score filters them.
    """
    from mediapipe.calculators.tensor import tensors_to_detections_calculator_pb2 as detections_pb2
    from mediapipe.framework import calculator_pb2
    from mediapipe.python._framework_bindings import validated_graph_config

    validated = validated_graph_config.ValidatedGraphConfig()
    validated.initialize(binary_graph_path=path)
    config = calculator_pb2.CalculatorGraphConfig()
    config.ParseFromString(validated.binary_config)  # the canonical graph, subgraphs expanded
    options_type = detections_pb2.TensorsToDetectionsCalculatorOptions
    for node in config.node:
        if node.name != _DETECTOR:
            continue
        for elem in node.node_options:
            if elem.type_url.split("/")[-1] == options_type.DESCRIPTOR.full_name:
                options = options_type.FromString(elem.value)
                options.min_score_thresh = _MIN_FACE_SCORE
                elem.value = options.SerializeToString()
                break
        else:
            node.options.Extensions[options_type.ext].min_score_thresh = _MIN_FACE_SCORE
    return config
