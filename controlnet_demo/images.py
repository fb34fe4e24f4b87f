"""One normalisation for every input image: whatever arrives becomes uint8 RGB (H, W, 3).

The convention of the whole package: uint8 RGB numpy arrays up to and out of the preprocessors, PIL images
only at the pipeline boundary. Every upload (a file, bytes, a data: URL, PIL, numpy) goes through `load_rgb`, which
also enforces the size limits before any pixel is decoded, so a decompression bomb is refused cheaply.

A request value is data, never a path: a `str` is read only as a `data:image/...;base64,` URL. A file is a
`pathlib.Path`, which only trusted code makes (the CLI from its arguments, the app from gradio's upload folder:
`ui/inputs.py`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import Message, UserInputError, message, quoted
from .settings import Limits

ImageLike = Path | str | bytes | Image.Image | np.ndarray  # str: a data: URL only

_DATA_URL = re.compile(r"data:image/[\w.+-]+;base64,", re.IGNORECASE)  # a drawing pad's PNG, sent inline

_HIGH_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def load_rgb(image: ImageLike, limits: Limits = Limits(), what: str | Message = "image") -> np.ndarray:
    """Decode, orient and convert any supported input to uint8 RGB, enforcing `limits`.

    - EXIF orientation is applied; an animation gives its first frame.
    - Transparency is composited: on white, unless the visible pixels are light (white strokes on a
      transparent canvas), then on black, so a drawing never vanishes into its background.
    - Grayscale, palette, CMYK and 16-bit / float images become 8-bit RGB; single-channel high-bit images
      (depth maps) are stretched to their own min..max range.
    """
    if image is None:
        raise UserInputError("No {what} was given: upload one (or draw one) first.", what=_what(what))
    opened = not isinstance(image, (np.ndarray, Image.Image))
    if isinstance(image, np.ndarray):
        pil = _from_array(image, what)
    elif isinstance(image, Image.Image):
        pil = image
    else:
        pil = _open(image, limits, what)
    try:
        check_size(pil.size, limits, what)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if getattr(pil, "n_frames", 1) > 1:
                pil.seek(0)  # first frame of an animation
            pil.load()
            return _to_rgb(ImageOps.exif_transpose(pil))
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        if isinstance(exc, UserInputError):
            raise
        raise UserInputError(
            "The {what} could not be decoded ({why}). It may be truncated or damaged: save it again as PNG or "
            "JPEG and re-upload.",
            what=_what(what),
            why=quoted(str(exc)),
        ) from None
    finally:
        if opened:
            pil.close()  # release the upload's file handle (animations keep it open)


def _what(what) -> Message:
    """The picture's name in a message: a text looked up whole, or a Message of its own ("condition 2 mask")."""
    return what if isinstance(what, Message) else message(what)


def not_a_picture(what) -> UserInputError:
    """The one refusal for a file that is not there, not a picture, or not a file this app may read: a caller
    cannot tell which (it would say whether a server path exists)."""
    return UserInputError(
        "The {what} is not an image this app can read. Upload a PNG, JPEG, WebP, GIF, BMP or TIFF file.",
        what=_what(what),
    )


def _from_data_url(url: str, limits: Limits, what) -> bytes:
    header = _DATA_URL.match(url)
    if header is None:
        raise UserInputError(
            "The {what} is a data: URL but not a base64 image; send it as data:image/png;base64,... (or as a file).",
            what=_what(what),
        )
    if len(url) - header.end() > limits.max_inline_bytes * 4 // 3 + 4:
        raise UserInputError(
            "The {what} sent inline is {size} MB; the limit is {limit} MB of image data. Upload it as a file instead.",
            what=_what(what),
            size=f"{len(url) / 2**20:.1f}",
            limit=f"{limits.max_inline_bytes / 2**20:.0f}",
        )
    try:
        return base64.b64decode(url[header.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise UserInputError(
            "The {what}'s data: URL is not valid base64. Send the picture again (or upload it as a file).",
            what=_what(what),
        ) from None


def _open(source, limits: Limits, what) -> Image.Image:
    if isinstance(source, str):  # a request's value: a data: URL or nothing, never a path
        if source[:5].lower() != "data:":
            raise not_a_picture(what)
        source = _from_data_url(source, limits, what)
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    elif not isinstance(source, Path) or not source.is_file():
        raise not_a_picture(what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(source)  # reads the header only; pixels are decoded after the size check
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserInputError(
            "The {what} declares an enormous pixel count (a decompression bomb?). Use an image of at most {limit} "
            "megapixels.",
            what=_what(what),
            limit=f"{limits.max_pixels / 1e6:.1f}",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        if _is_svg(source):
            raise UserInputError(
                "The {what} is an SVG (vector) file. Export it as PNG or JPEG and upload that.", what=_what(what)
            ) from None
        raise not_a_picture(what) from None


def _is_svg(source) -> bool:
    """By name or by content: uploads often arrive as temp files or bytes whose name says nothing."""
    if isinstance(source, io.BytesIO):
        head = source.getvalue()[:4096]
    else:
        if Path(source).suffix.lower() in (".svg", ".svgz"):
            return True
        with open(source, "rb") as file:
            head = file.read(4096)
    return b"<svg" in head.lower()


def _from_array(array: np.ndarray, what) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or array.size == 0:
        raise UserInputError(
            "The {what} has an unsupported shape {shape}; expected (H, W), (H, W, 3) or (H, W, 4).",
            what=_what(what),
            shape=str(array.shape),
        )
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        values = np.nan_to_num(array.astype(np.float64))
        lo, hi = float(values.min()), float(values.max())
        if np.issubdtype(array.dtype, np.floating) and 0.0 <= lo and hi <= 1.0:
            values = values * 255.0  # the float image convention: 0..1
        elif array.ndim == 2:
            values = _stretch(values)  # one channel in its own units (a depth map, 16-bit gray): use its range
        elif np.issubdtype(array.dtype, np.integer) and hi > 255:
            values = values * (255.0 / np.iinfo(array.dtype).max)  # wide colour (16-bit RGB): scale, don't clip
        array = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def _stretch(array: np.ndarray) -> np.ndarray:
    array = np.nan_to_num(array.astype(np.float64))
    lo, hi = float(array.min()), float(array.max())
    return np.zeros_like(array) if hi <= lo else (array - lo) * (255.0 / (hi - lo))


def check_size(size: tuple[int, int], limits: Limits, what: str | Message = "image") -> None:
    width, height = size
    if width * height > limits.max_pixels:
        raise UserInputError(
            "The {what} is {width}x{height} ({mp} MP); the limit is {limit} MP. Downscale it and upload again.",
            what=_what(what),
            width=width,
            height=height,
            mp=f"{width * height / 1e6:.1f}",
            limit=f"{limits.max_pixels / 1e6:.1f}",
        )
    if min(width, height) < limits.min_side or max(width, height) > limits.max_side:
        raise UserInputError(
            "The {what} is {width}x{height}; each side must be between {lo} and {hi} pixels. Resize it and upload "
            "again.",
            what=_what(what),
            width=width,
            height=height,
            lo=limits.min_side,
            hi=limits.max_side,
        )
    if max(width, height) / min(width, height) > limits.max_aspect:
        raise UserInputError(
            "The {what} is {width}x{height}, an aspect ratio over {ratio}:1. Crop it closer to square and upload "
            "again.",
            what=_what(what),
            width=width,
            height=height,
            ratio=f"{limits.max_aspect:g}",
        )


def _to_rgb(pil: Image.Image) -> np.ndarray:
    if pil.mode in _HIGH_BIT_MODES:
        return np.repeat(_stretch(np.asarray(pil))[..., None], 3, axis=2).astype(np.uint8)
    if "transparency" in pil.info and pil.mode in ("P", "L", "RGB"):  # a tRNS colour key is transparency too
        pil = pil.convert("RGBA")
    if pil.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return composite_alpha(np.asarray(pil.convert("RGBA")))
    return np.asarray(pil.convert("RGB")).copy()


def composite_alpha(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> (H, W, 3) uint8 on a background that contrasts with the visible content."""
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    weight = float(alpha.sum())
    visible_lum = float((rgb.mean(axis=2, keepdims=True) * alpha).sum() / weight) if weight > 0 else 0.0
    # Black only behind light content (white strokes); photos, even bright ones, and dark strokes go on white.
    background = 0.0 if weight > 0 and visible_lum >= 192.0 else 255.0
    return np.clip(rgb * alpha + background * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)


def fit_resolution(size: tuple[int, int], longer_side: int, multiple: int = 64) -> tuple[int, int]:
    """Output (width, height) with the longer side `longer_side`, the input's aspect kept, both sides rounded
    to `multiple` (at least one `multiple`)."""
    width, height = size
    scale = longer_side / max(width, height)
    return (
        max(multiple, int(round(width * scale / multiple)) * multiple),
        max(multiple, int(round(height * scale / multiple)) * multiple),
    )


def resize(image: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize uint8 RGB to (width, height): area averaging to shrink, Lanczos to enlarge, nearest for masks."""
    import cv2

    width, height = size
    if image.shape[1] == width and image.shape[0] == height:
        return image
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if width * height < image.shape[0] * image.shape[1] else cv2.INTER_LANCZOS4
    return cv2.resize(image, (width, height), interpolation=interp)


def map_png(control: np.ndarray) -> tuple[str, bytes]:
    """(key, PNG bytes) of a control map: the key is the start of the PNG's SHA-256."""
    buffer = io.BytesIO()
    Image.fromarray(control).save(buffer, format="PNG")
    png = buffer.getvalue()
    return hashlib.sha256(png).hexdigest()[:16], png
