"""Payload coding: CRC, systematic convolutional code, list Viterbi and per-bit MAP decoding, fields."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from v2a.errors import InputError
from v2a.watermark.payload import (
    CODED_BITS,
    as_payload,
    crc16,
    decode,
    encode,
    make_payload,
    message_llrs,
    payload_fields,
)


def test_crc16_matches_the_standard_check_value():
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value


def test_round_trip_clean_and_with_errors():
    rng = np.random.default_rng(0)
    for _ in range(20):
        payload = rng.bytes(4)
        coded = encode(payload)
        assert coded.shape == (CODED_BITS,) and set(np.unique(coded)) <= {0, 1}
        assert decode(2.0 * coded - 1.0) == (payload, True)
        soft = 2.0 * coded - 1.0
        flips = rng.choice(CODED_BITS, size=8, replace=False)  # 8 hard errors spread over the block
        soft[flips] *= -1
        assert decode(soft) == (payload, True)


def test_decoder_reports_crc_failure_on_noise():
    rng = np.random.default_rng(1)
    failures = sum(not decode(rng.standard_normal(CODED_BITS))[1] for _ in range(50))
    assert failures >= 49


def test_list_decoding_uses_the_crc_to_recover_payloads_plain_viterbi_loses():
    rng = np.random.default_rng(2)
    plain = listed = 0
    for _ in range(100):
        payload = rng.bytes(4)
        soft = 2.0 * encode(payload) - 1.0 + 1.2 * rng.standard_normal(CODED_BITS)  # about -1.6 dB per bit
        plain += decode(soft, list_size=1) == (payload, True)
        listed += decode(soft) == (payload, True)
    assert listed >= plain + 10 and listed >= 85
    wrong = sum(decode(rng.standard_normal(CODED_BITS))[1] for _ in range(500))
    assert wrong <= 2  # a CRC passes by chance about 16 / 65536 of the time


def test_code_is_systematic_and_ends_in_state_zero():
    rng = np.random.default_rng(4)
    payload = rng.bytes(4)
    message = np.unpackbits(np.frombuffer(payload + crc16(payload).to_bytes(2, "big"), dtype=np.uint8))
    first_outputs = encode(payload).reshape(-1, 3)[:, 0]
    assert np.array_equal(first_outputs[: message.size], message)
    assert np.all(np.sign(message_llrs(8.0 * encode(payload) - 4.0)) == 2.0 * message - 1.0)


def test_failed_decodes_still_guess_most_bits_from_the_systematic_part():
    """Below the code's threshold no path passes the CRC, yet the per-bit MAP guess beats a coin."""
    rng = np.random.default_rng(3)
    amplitude, accuracies = 0.45, []
    for _ in range(100):
        payload = rng.bytes(4)
        received = amplitude * (2.0 * encode(payload) - 1.0) + rng.standard_normal(CODED_BITS)
        decoded, crc_ok = decode(2.0 * amplitude * received)  # log-likelihood ratios
        if not crc_ok:
            errors = bin(int.from_bytes(decoded, "big") ^ int.from_bytes(payload, "big")).count("1")
            accuracies.append(1.0 - errors / 32)
    assert len(accuracies) >= 80
    assert np.mean(accuracies) >= 0.63  # a failed path of the feed-forward encoder: about 0.55


def test_default_payload_fields():
    payload = make_payload(0x1234, dt.date(2026, 11, 24))
    assert payload_fields(payload) == {"hex": payload.hex(), "model_id": 0x1234, "date": "2026-11-24"}
    assert payload_fields(make_payload("foley-small"))["model_id"] == crc16(b"foley-small")


def test_as_payload_accepts_int_and_bytes_and_rejects_the_rest():
    assert as_payload(0x01020304) == b"\x01\x02\x03\x04"
    assert as_payload(b"abcd") == b"abcd"
    assert len(as_payload(None)) == 4
    for bad in (-1, 1 << 32, b"abc", "abcd", True, 1.5):
        with pytest.raises(InputError, match="payload"):
            as_payload(bad)
    with pytest.raises(InputError, match="date"):
        make_payload(1, dt.date(2020, 1, 1))
