"""Motion in continuous time: bouncing drops, walking gaits, passing vehicles, and Doppler time warps.

Every function returns positions sampled at the caller's frame times plus the exact times of the events the
motion causes (contacts, foot strikes), solved analytically, so a sound placed at an event time is where the
physics puts it, not rounded to a frame. Units: seconds, pixels and pixels/s (``ppm`` pixels per metre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRAVITY = 9.81  # m/s^2
SPEED_OF_SOUND = 343.0  # m/s
MIN_BOUNCE_SPEED = 0.35  # m/s: slower contacts end the bouncing (the object comes to rest)


@dataclass(frozen=True)
class Contact:
    """One impact: when it happens, how fast (m/s) and where (x in pixels)."""

    t: float
    speed: float
    x: float


@dataclass(frozen=True)
class Drop:
    """A drop's trajectory at frame times and its contacts with the floor."""

    x: np.ndarray  # (T,) centre x in pixels
    y: np.ndarray  # (T,) centre y in pixels (NaN before the object appears)
    spin: np.ndarray  # (T,) rotation in degrees
    contacts: list[Contact]


def drop(
    times: np.ndarray,
    *,
    t0: float,
    x0: float,
    height_px: float,
    floor_y: float,
    radius_px: float,
    ppm: float,
    vx: float = 0.0,
    vy0: float = 0.0,
    restitution: float = 0.6,
    friction: float = 0.85,
    max_contacts: int = 12,
) -> Drop:
    """An object released at ``t0`` above the floor, bouncing until it rests.

    Args:
        times: (T,) frame times in seconds.
        t0: release time.
        x0: release x (pixels).
        height_px: height of the object's bottom above the floor at release.
        floor_y: y of the floor line (pixels, y grows downwards).
        radius_px: half height of the object (its centre is this far above the floor at contact).
        ppm: pixels per metre.
        vx: horizontal speed in pixels/s (kept through bounces, scaled by ``friction`` at each contact).
        vy0: initial upward speed in m/s (a throw); 0 for a release.
        restitution: speed kept at each bounce.
        friction: horizontal speed kept at each contact.
        max_contacts: stop after this many contacts.

    Returns:
        The trajectory and the contacts (t, impact speed in m/s, x).
    """
    y = np.full(times.shape, np.nan)
    x = np.full(times.shape, np.nan)
    contacts: list[Contact] = []
    start, height, v_up, x_start, speed_x = t0, height_px / ppm, vy0, x0, vx
    end = float(times[-1]) + 1.0
    while start < end:
        # height(t) = h + v t - g t^2 / 2 reaches 0 at the positive root
        t_hit = (v_up + np.sqrt(v_up**2 + 2 * GRAVITY * height)) / GRAVITY
        sel = (times >= start) & (times < start + t_hit)
        dt = times[sel] - start
        y[sel] = floor_y - radius_px - (height + v_up * dt - GRAVITY * dt**2 / 2) * ppm
        x[sel] = x_start + speed_x * dt
        impact_speed = GRAVITY * t_hit - v_up
        start += t_hit
        x_start += speed_x * t_hit
        contacts.append(Contact(float(start), float(impact_speed), float(x_start)))
        v_up, height = impact_speed * restitution, 0.0
        speed_x *= friction
        if v_up < MIN_BOUNCE_SPEED or len(contacts) >= max_contacts:
            break
    rest = times >= start
    y[rest] = floor_y - radius_px
    # after the last contact it slides to a stop within half a second
    slide = np.clip(times[rest] - start, 0, 0.5)
    x[rest] = x_start + speed_x * (slide - slide**2)
    spin = np.where(np.isnan(x), 0.0, np.nan_to_num(x - x0) / max(radius_px, 1.0) * 57.3)
    return Drop(x, y, spin, [c for c in contacts if c.t <= times[-1] + 1e-9])


@dataclass(frozen=True)
class Walk:
    """A walker's path at frame times and the exact foot-strike times."""

    x: np.ndarray  # (T,) x of the body centre in pixels
    bob: np.ndarray  # (T,) vertical body offset in pixels (lowest at each strike)
    phase: np.ndarray  # (T,) gait phase in cycles (one cycle = two steps)
    strikes: list[tuple[float, float]]  # (t, x) of each step


def walk(
    times: np.ndarray,
    *,
    t0: float,
    t1: float,
    x0: float,
    speed_px: float,
    step_s: float,
    bob_px: float,
) -> Walk:
    """Walking at constant speed from ``t0`` to ``t1`` (standing still outside that span).

    Args:
        times: (T,) frame times.
        t0: first foot strike.
        t1: the walker stops after the last strike before ``t1``.
        x0: x at ``t0``.
        speed_px: signed horizontal speed in pixels/s.
        step_s: time between foot strikes.
        bob_px: amplitude of the vertical body bob.

    Returns:
        The path and foot strikes.
    """
    n_steps = max(1, int((t1 - t0) / step_s) + 1)
    strike_t = t0 + step_s * np.arange(n_steps)
    t_end = float(strike_t[-1])
    clamped = np.clip(times, t0, t_end)
    x = x0 + speed_px * (clamped - t0)
    phase = (clamped - t0) / (2 * step_s)
    bob = -bob_px * np.abs(np.sin(np.pi * (clamped - t0) / step_s))
    return Walk(x, bob, phase, [(float(t), float(x0 + speed_px * (t - t0))) for t in strike_t])


def linear_path(times: np.ndarray, *, t0: float, x0: float, speed_px: float) -> np.ndarray:
    """x at ``times`` of something moving at constant speed, passing ``x0`` at ``t0``."""
    return x0 + speed_px * (np.asarray(times) - t0)


def doppler_times(
    t_recv: np.ndarray, *, t0: float, x0_m: float, speed_m: float, depth_m: float, listener_x_m: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Emission times and distances for a source moving along a straight line past a listener.

    A sound heard at ``t_r`` left the source at ``t_e`` with ``t_r = t_e + r(t_e) / c``; the relation is
    monotonic for subsonic sources, so it is inverted by interpolation on a dense grid of emission times.

    Args:
        t_recv: (S,) receive times in seconds (the audio sample times).
        t0: time at which the source is at ``x0_m``.
        x0_m: source x in metres at ``t0``.
        speed_m: source speed in m/s (signed).
        depth_m: perpendicular distance of the path from the listener.
        listener_x_m: listener x in metres.

    Returns:
        ``(t_emit, distance_m)``, both (S,): read the source signal at ``t_emit``; scale by 1/distance.
    """
    lead = (np.hypot(abs(x0_m) + abs(speed_m) * 20, depth_m)) / SPEED_OF_SOUND + 1.0
    grid = np.linspace(float(t_recv[0]) - lead, float(t_recv[-1]) + 0.1, max(256, t_recv.size // 16))
    dist = np.hypot(x0_m + speed_m * (grid - t0) - listener_x_m, depth_m)
    arrive = grid + dist / SPEED_OF_SOUND
    t_emit = np.interp(t_recv, arrive, grid)
    distance = np.hypot(x0_m + speed_m * (t_emit - t0) - listener_x_m, depth_m)
    return t_emit, distance
