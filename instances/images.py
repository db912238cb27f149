"""The one safe way to look at an untrusted picture: header first, pixels never
beyond a budget.

A 48 KB PNG can declare a 20000 × 20000 canvas; decoding it costs its full size
(1.2 GB of RGB). Pillow only raises past twice ``Image.MAX_IMAGE_PIXELS`` and warns
below, so every path that opens an uploaded or received picture (setProfilePicture,
setGroupPicture, event thumbnails) checks the declared size here before anything
decodes the pixels.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

# 6000 × 6000: more than any phone camera; decoding it needs ~100 MB at most.
MAX_PIXELS = 36_000_000


class UnsafeImage(ValueError):
    """Not a picture Pillow reads, or one bigger than ``MAX_PIXELS``."""

    def __init__(self, message: str, *, too_big: bool = False) -> None:
        super().__init__(message)
        self.too_big = too_big


def check_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) of a picture whose header is valid and whose canvas is within
    ``max_pixels``; raises ``UnsafeImage`` otherwise. Decodes no pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise UnsafeImage(f"more than {max_pixels} pixels", too_big=True)
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnsafeImage(f"more than {max_pixels} pixels", too_big=True) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, UnsafeImage):
            raise
        raise UnsafeImage("not a picture") from exc
    return width, height
