"""The watermark's message: 32 payload bits, a CRC-16, and a convolutional code with soft list decoding.

Layout of the default payload (big-endian): 16 bits model id, 16 bits day number (days since
2024-01-01, so dates up to 2203 fit). Any other 32-bit value (int or 4 bytes) may be embedded instead;
``payload_fields`` then still shows it split that way.

Channel coding: the 32 bits and a CRC-16/CCITT of them (48 message bits) go through the rate-1/3,
constraint length 7 convolutional code with generators 133, 171, 165 (octal), terminated in state 0
after 6 tail steps: 162 coded bits. The encoder is the code's recursive systematic form (feedback 133,
Berrou et al., "Near Shannon limit error-correcting coding", ICC 1993): the same codewords as the
feed-forward encoder, so the same distance and the same decoding failures, but the first coded bit of
each step is the message bit itself. The decoder is a soft-decision list Viterbi decoder: of the 16
best paths, the first whose CRC matches is the payload (Seshadri & Sundberg, "List Viterbi decoding
algorithms with applications", IEEE Trans. Commun. 1994); the CRC tells whether it succeeded. When no
path passes, the decoder's guess is the per-bit maximum a posteriori message (the BCJR algorithm,
Bahl et al., IEEE Trans. Inf. Theory 1974): because the code is systematic, that guess keeps about 70 %
of the bits right at signal-to-noise ratios where a failed path gets little more than half of them.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np

from v2a.errors import InputError

PAYLOAD_BITS = 32
PAYLOAD_BYTES = PAYLOAD_BITS // 8
CRC_BITS = 16
_K = 7  # constraint length
_GENERATORS = (0o133, 0o171, 0o165)
_FEEDBACK = _GENERATORS[0]  # the recursive systematic encoder divides by this generator
_STATES = 1 << (_K - 1)
MESSAGE_BITS = PAYLOAD_BITS + CRC_BITS
CODED_BITS = (MESSAGE_BITS + _K - 1) * len(_GENERATORS)  # 162
EPOCH = dt.date(2024, 1, 1)
DEFAULT_MODEL_ID = 0x0001  # the bundled public model
LIST_SIZE = 16  # paths the list Viterbi decoder keeps per state


def make_payload(model_id: int | str = DEFAULT_MODEL_ID, day: dt.date | None = None) -> bytes:
    """The default 4-byte payload: model id and day.

    Args:
        model_id: 16-bit model number, or a model name (hashed to 16 bits with CRC-16).
        day: the date to record (default: today, UTC).

    Returns:
        4 bytes: model id (2 bytes), then days since 2024-01-01 (2 bytes), big-endian.
    """
    if isinstance(model_id, str):
        model_id = crc16(model_id.encode("utf-8"))
    if not 0 <= int(model_id) < 1 << 16:
        raise InputError(f"model id must be in 0..65535, got {model_id}")
    day = day or dt.datetime.now(dt.UTC).date()
    days = (day - EPOCH).days
    if not 0 <= days < 1 << 16:
        raise InputError(f"the date {day} cannot be stored: it must be between {EPOCH} and 2203")
    return int(model_id).to_bytes(2, "big") + days.to_bytes(2, "big")


def as_payload(payload: int | bytes | None) -> bytes:
    """Normalise a payload argument to 4 bytes (None: ``make_payload()``, today's default).

    Raises:
        InputError: a negative or too large int, or bytes that are not exactly 4 long.
    """
    if payload is None:
        return make_payload()
    if isinstance(payload, bool):
        raise InputError("payload must be an int or 4 bytes, not a bool")
    if isinstance(payload, int | np.integer):
        if not 0 <= int(payload) < 1 << PAYLOAD_BITS:
            raise InputError(
                f"payload must fit in {PAYLOAD_BITS} bits (0..{(1 << PAYLOAD_BITS) - 1}), got {payload}"
            )
        return int(payload).to_bytes(PAYLOAD_BYTES, "big")
    if isinstance(payload, bytes | bytearray):
        if len(payload) != PAYLOAD_BYTES:
            raise InputError(f"payload must be {PAYLOAD_BYTES} bytes, got {len(payload)}")
        return bytes(payload)
    raise InputError(f"payload must be an int or {PAYLOAD_BYTES} bytes, not {type(payload).__name__}")


def payload_fields(payload: bytes) -> dict[str, str | int]:
    """Readable view of a payload: hex, model id and date as the default layout stores them."""
    day = EPOCH + dt.timedelta(days=int.from_bytes(payload[2:4], "big"))
    return {
        "hex": payload.hex(),
        "model_id": int.from_bytes(payload[:2], "big"),
        "date": day.isoformat(),
    }


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF) of ``data``."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode(payload: bytes) -> np.ndarray:
    """(CODED_BITS,) uint8 coded bits of a 4-byte payload (payload + CRC, systematic convolutional code)."""
    payload = as_payload(payload)
    message = payload + crc16(payload).to_bytes(2, "big")
    inputs = _register_inputs(np.unpackbits(np.frombuffer(message, dtype=np.uint8)))
    outputs = _outputs()
    coded = np.empty((inputs.size, len(_GENERATORS)), dtype=np.uint8)
    state = 0
    for i, bit in enumerate(inputs):
        register = (state << 1) | int(bit)
        coded[i] = outputs[register]
        state = register & (_STATES - 1)
    return coded.reshape(-1)


def _register_inputs(message: np.ndarray) -> np.ndarray:
    """Shift-register inputs v (message bits + 6 zeros) whose first coded bit is the message: v * 133 = u.

    Dividing the message by the feedback generator (v_t = u_t + the feedback taps of earlier v) makes
    the first output of the feed-forward encoder, sum of the taps of 133 over v, equal to u_t; the
    zero tail then ends the trellis in state 0, as for the feed-forward code.
    """
    inputs = np.zeros(message.size + _K - 1, dtype=np.uint8)
    taps = [i for i in range(1, _K) if (_FEEDBACK >> i) & 1]
    for t, bit in enumerate(message):
        inputs[t] = (int(bit) + sum(int(inputs[t - i]) for i in taps if t >= i)) & 1
    return inputs


def decode(soft: np.ndarray, *, list_size: int = LIST_SIZE) -> tuple[bytes, bool]:
    """Most likely payload from soft coded bits whose CRC checks (list Viterbi decoding).

    The decoder keeps the ``list_size`` best paths into every state; the best path whose CRC matches
    wins, else the per-bit most likely payload (``message_llrs``) is returned with ``crc_ok`` False. A
    longer list finds payloads at lower signal-to-noise ratios, and lets a wrong one pass the CRC with
    probability about list_size / 2**16 when the true one is not in the list.

    Args:
        soft: (CODED_BITS,) soft values, positive meaning bit 1: log-likelihood ratios (the list search
            ignores their scale; the per-bit guess after a failure uses it).
        list_size: paths kept per state (1: plain Viterbi).

    Returns:
        ``(payload, crc_ok)``: the 4 decoded bytes and whether their CRC matches.
    """
    soft = np.asarray(soft, dtype=np.float64).reshape(-1, len(_GENERATORS))  # (steps, 3)
    if soft.shape[0] != MESSAGE_BITS + _K - 1:
        raise ValueError(f"expected {CODED_BITS} soft bits, got {soft.size}")
    signs = _outputs().astype(np.float64) * 2.0 - 1.0  # (2 * states, 3): register -> +/-1 outputs
    upper = np.arange(_STATES)  # next states; register = state + 64 * oldest bit of the predecessor
    metric = np.full((_STATES, list_size), -np.inf)
    metric[0, 0] = 0.0
    back = np.empty((soft.shape[0], _STATES, list_size), dtype=np.int32)  # index into the 2L candidates
    for step, received in enumerate(soft):
        branch = signs @ received  # (128,) correlation of each register's outputs with what was received
        candidates = np.concatenate(
            [
                metric[upper >> 1] + branch[upper, None],
                metric[(upper >> 1) | (_STATES >> 1)] + branch[upper + _STATES, None],
            ],
            axis=1,
        )  # (states, 2L): from the low predecessor, then from the high one
        order = np.argsort(-candidates, axis=1, kind="stable")[:, :list_size]
        back[step] = order
        metric = np.take_along_axis(candidates, order, axis=1)
    for rank in range(list_size):
        if np.isfinite(metric[0, rank]):
            payload, crc_ok = _trace(back, rank)
            if crc_ok:
                return payload, True
    guess = message_llrs(soft)[:PAYLOAD_BITS] > 0
    return np.packbits(guess.astype(np.uint8)).tobytes(), False


def message_llrs(soft: np.ndarray) -> np.ndarray:
    """(MESSAGE_BITS,) a posteriori log-likelihood ratios of the message bits (BCJR forward-backward).

    Args:
        soft: (CODED_BITS,) log-likelihood ratios of the coded bits, positive meaning bit 1.

    Returns:
        log P(u_t = 1 | soft) - log P(u_t = 0 | soft) for each payload and CRC bit.
    """
    soft = np.asarray(soft, dtype=np.float64).reshape(-1, len(_GENERATORS))
    signs = _outputs().astype(np.float64) * 2.0 - 1.0
    gammas = 0.5 * soft @ signs.T  # (steps, registers): log-likelihood of each transition, up to a constant
    registers = np.arange(2 * _STATES)
    before, after = registers >> 1, registers & (_STATES - 1)
    message_bit = _outputs()[:, 0] == 1  # systematic: the first output of a transition is its message bit
    alpha = np.full((soft.shape[0] + 1, _STATES), -np.inf)
    alpha[0, 0] = 0.0
    for t, gamma in enumerate(gammas):
        into = alpha[t, before] + gamma  # register r leads to state r & 63, from r >> 1
        alpha[t + 1] = np.logaddexp(into[:_STATES], into[_STATES:])
        alpha[t + 1] -= alpha[t + 1].max()
    beta = np.where(np.arange(_STATES) == 0, 0.0, -np.inf)  # the tail ends in state 0
    llrs = np.empty(MESSAGE_BITS)
    for t in range(soft.shape[0] - 1, -1, -1):
        out_of = gammas[t] + beta[after]
        if t < MESSAGE_BITS:
            joint = alpha[t, before] + out_of
            llrs[t] = np.logaddexp.reduce(joint[message_bit]) - np.logaddexp.reduce(joint[~message_bit])
        beta = np.logaddexp(out_of[0::2], out_of[1::2])  # state s leaves through registers 2s and 2s + 1
        beta -= beta.max()
    return llrs


def _trace(back: np.ndarray, rank: int) -> tuple[bytes, bool]:
    """Payload and CRC check of the ``rank``-th best path ending in state 0."""
    steps, _, list_size = back.shape
    state, inputs = 0, np.zeros(steps + _K - 1, dtype=np.uint8)  # the register inputs, zeros before 0
    for step in range(steps - 1, -1, -1):
        inputs[step + _K - 1] = state & 1
        high, rank = divmod(int(back[step, state, rank]), list_size)
        state = (state >> 1) | (high << (_K - 2))
    windows = np.lib.stride_tricks.sliding_window_view(inputs, _K)[:MESSAGE_BITS, ::-1]  # newest first
    taps = (_FEEDBACK >> np.arange(_K)) & 1
    bits = (windows @ taps % 2).astype(np.uint8)  # the message: each step's first (systematic) output
    message = np.packbits(bits).tobytes()
    payload, crc = message[:PAYLOAD_BYTES], int.from_bytes(message[PAYLOAD_BYTES:], "big")
    return payload, crc16(payload) == crc


@functools.cache
def _outputs() -> np.ndarray:
    """(2**K, 3) uint8 coded bits for each 7-bit register value (newest bit lowest)."""
    registers = np.arange(1 << _K)
    table = np.empty((registers.size, len(_GENERATORS)), dtype=np.uint8)
    for j, generator in enumerate(_GENERATORS):
        table[:, j] = [bin(int(r) & generator).count("1") & 1 for r in registers]
    return table
