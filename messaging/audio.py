"""Cutting audio to a length, for voice statuses (``messaging.media.check_status_file``:
a voice status is cut to ``VOICE_LIMIT_SECONDS``, API.md §9.7: "Audio > 1 min
truncated"). WAV and MP3 are cut exactly (at a sample frame / an MPEG frame); other
audio formats are posted as they are, since measuring them needs a decoder."""

from __future__ import annotations

import io
import wave

VOICE_LIMIT_SECONDS = 60.0

# MPEG audio: kbps per bitrate index, by (MPEG-1?, layer).
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def cut_audio(content: bytes, seconds: float) -> bytes | None:
    """The first ``seconds`` of a WAV or MP3 file, or None when it is shorter
    (or a format we cannot measure)."""
    if content[:4] == b"RIFF" and content[8:12] == b"WAVE":
        return _cut_wav(content, seconds)
    return _cut_mp3(content, seconds)


def _cut_wav(content: bytes, seconds: float) -> bytes | None:
    try:
        with wave.open(io.BytesIO(content), "rb") as source:
            params = source.getparams()
            keep = int(params.framerate * seconds)
            if params.nframes <= keep:
                return None
            frames = source.readframes(keep)
    except (wave.Error, EOFError):
        return None
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setparams(params)
        target.writeframes(frames)
    return out.getvalue()


def _mp3_frame(header: bytes) -> tuple[int, float] | None:
    """(length in bytes, duration in seconds) of the MPEG audio frame starting with
    these four bytes, or None when they are not a frame header."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 3
    layer = 4 - ((header[1] >> 1) & 3)
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 3
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved values (and free-format streams, which we do not walk)
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    padding = (header[2] >> 1) & 1
    if layer == 1:
        samples, length = 384, (12 * bitrate // rate + padding) * 4
    else:
        samples = 1152 if (layer == 2 or mpeg1) else 576
        length = samples // 8 * bitrate // rate + padding
    return length, samples / rate


def _cut_mp3(content: bytes, seconds: float) -> bytes | None:
    start = 0
    if content[:3] == b"ID3" and len(content) >= 10:
        size = 0
        for byte in content[6:10]:
            size = (size << 7) | (byte & 0x7F)
        start = 10 + size + (10 if content[5] & 0x10 else 0)
    position, elapsed = start, 0.0
    while position < len(content):
        frame = _mp3_frame(content[position : position + 4])
        if frame is None:
            return None  # not MPEG audio, or a trailing tag after frames under the limit
        length, duration = frame
        if elapsed + duration > seconds + 1e-9:
            return content[:position]
        elapsed += duration
        position += length
    return None

