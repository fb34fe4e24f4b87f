"""load_rgb: every kind of upload becomes uint8 RGB (H, W, 3), or a UserInputError that says what to do."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from controlnet_demo.errors import UserInputError
from controlnet_demo.images import fit_resolution, load_rgb, resize


def save(tmp_path, name: str, image: Image.Image, **options) -> Path:
    path = tmp_path / name
    image.save(path, **options)
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries a few bytes of pixel data: decoding it would fail."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def rejected(source, *words: str) -> str:
    with pytest.raises(UserInputError) as info:
        load_rgb(source)
    message = str(info.value)
    for word in words:
        assert word.lower() in message.lower(), message
    return message


def strokes(canvas: np.ndarray, colour) -> np.ndarray:
    """Anti-aliased strokes, as a sketchpad draws them."""
    cv2.line(canvas, (40, 40), (220, 200), colour, 6, cv2.LINE_AA)
    cv2.circle(canvas, (128, 128), 60, colour, 4, cv2.LINE_AA)
    return canvas


# --- transparency -------------------------------------------------------------------------------------------


def test_rgba_photo_is_composited_on_white(tmp_path, astronaut):
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    rgba[:100, :, 3] = 0  # a cut-out: the top band is transparent
    out = load_rgb(save(tmp_path, "cutout.png", Image.fromarray(rgba)))
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    assert (out[:100] == 255).all()
    np.testing.assert_array_equal(out[100:], astronaut[100:])


def test_bright_rgba_photo_is_composited_on_white_too(tmp_path):
    photo = data.immunohistochemistry()  # a light photo (mean ~160), still a photo, not white strokes
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:, :128, 3] = 0
    out = load_rgb(save(tmp_path, "bright.png", Image.fromarray(rgba)))
    assert (out[:, :128] == 255).all()
    np.testing.assert_array_equal(out[:, 128:], photo[:, 128:])


def test_black_strokes_on_transparent_canvas_give_black_on_white(tmp_path):
    canvas = strokes(np.zeros((256, 256, 4), np.uint8), (0, 0, 0, 255))  # alpha only on the strokes
    out = load_rgb(save(tmp_path, "sketch.png", Image.fromarray(canvas)))
    assert out[0, 0].tolist() == [255, 255, 255]  # background white, not black
    assert out[128, 68].tolist() == [0, 0, 0]  # on the circle
    assert out.mean() > 200  # mostly white, not an all-black image


def test_white_strokes_on_transparent_canvas_give_white_on_black(tmp_path):
    canvas = np.zeros((256, 256, 4), np.uint8)
    canvas[..., :3] = 255  # hidden colour of the transparent pixels must not matter
    canvas = strokes(canvas, (255, 255, 255, 255))
    out = load_rgb(save(tmp_path, "sketch.png", Image.fromarray(canvas)))
    assert out[0, 0].tolist() == [0, 0, 0]  # contrasting background
    assert out[128, 68].tolist() == [255, 255, 255]
    assert out.mean() < 50


# --- modes and formats --------------------------------------------------------------------------------------


def test_palette_image_is_converted(tmp_path, astronaut):
    path = save(tmp_path, "palette.png", Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE))
    assert Image.open(path).mode == "P"
    out = load_rgb(path)
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - astronaut).mean() < 12  # 256 colours approximate the photo


def test_palette_transparency_is_composited_on_white(tmp_path):
    image = Image.new("P", (128, 128), 0)
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)  # index 0 black (made transparent), index 1 red
    image.paste(1, (32, 32, 96, 96))
    path = save(tmp_path, "palette_alpha.png", image, transparency=0)
    out = load_rgb(path)
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[64, 64].tolist() == [200, 0, 0]


def test_rgb_png_with_colour_key_transparency_is_composited(tmp_path, coffee):
    photo = coffee.copy()
    photo[:50] = (1, 2, 3)  # the tRNS colour key
    path = save(tmp_path, "key.png", Image.fromarray(photo), transparency=(1, 2, 3))
    out = load_rgb(path)
    assert (out[:50] == 255).all()
    np.testing.assert_array_equal(out[50:], coffee[50:])


def test_grayscale_image_becomes_three_equal_channels(tmp_path):
    camera = data.camera()
    out = load_rgb(save(tmp_path, "gray.png", Image.fromarray(camera)))
    assert out.shape == (512, 512, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], camera)


def test_gray_with_alpha_is_composited(tmp_path):
    la = np.zeros((128, 128, 2), np.uint8)
    la[..., 0] = 90
    la[:, 64:, 1] = 255  # right half opaque gray 90, left half transparent
    out = load_rgb(save(tmp_path, "la.png", Image.fromarray(la, "LA")))
    assert (out[:, :64] == 255).all()
    assert (out[:, 64:] == 90).all()


def test_16bit_grayscale_png_is_stretched_to_full_range(tmp_path):
    ramp = np.tile(np.linspace(1000, 3000, 256).astype(np.uint16), (64, 1))  # a depth map in millimetres
    path = save(tmp_path, "depth16.png", Image.fromarray(ramp))
    assert Image.open(path).mode.startswith("I")
    out = load_rgb(path)
    assert out.shape == (64, 256, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    assert (np.diff(out[0, :, 0].astype(int)) >= 0).all()  # order kept


def test_cmyk_jpeg_is_converted(tmp_path, astronaut):
    path = save(tmp_path, "cmyk.jpg", Image.fromarray(astronaut).convert("CMYK"), quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_rgb(path)
    assert out.shape == (512, 512, 3)
    assert np.abs(out.astype(int) - astronaut).mean() < 8


def test_float_rgb_array_in_unit_range_is_scaled(astronaut):
    out = load_rgb(astronaut.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(out, astronaut)  # rounded, not truncated


def test_float_gray_array_in_unit_range_keeps_its_level():
    out = load_rgb(np.full((100, 100), 0.5, np.float32))
    assert (out == 128).all()  # mid gray, not stretched to black


def test_float_depth_array_is_stretched_to_full_range():
    depth = np.tile(np.linspace(0.5, 7.5, 128), (64, 1))  # metres
    out = load_rgb(depth)
    assert out.shape == (64, 128, 3)
    assert out.min() == 0 and out.max() == 255


def test_16bit_rgb_array_is_scaled_not_clipped(astronaut):
    out = load_rgb(astronaut.astype(np.uint16) * 257)
    np.testing.assert_array_equal(out, astronaut)


def test_boolean_mask_array_becomes_black_and_white():
    mask = np.zeros((64, 64, 3), bool)
    mask[:, 32:] = True
    out = load_rgb(mask)
    assert (out[:, :32] == 0).all() and (out[:, 32:] == 255).all()


def test_exif_orientation_6_is_applied(tmp_path):
    stored = np.full((200, 300, 3), 40, np.uint8)  # stored landscape, 200 high x 300 wide
    stored[:30, :30] = (255, 0, 0)  # red marker at the stored top-left
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = save(tmp_path, "rotated.jpg", image, exif=exif, quality=95)
    out = load_rgb(path)
    assert out.shape == (300, 200, 3)  # displayed portrait
    assert out[10, -10, 0] > 200 and out[10, -10, 1] < 60  # the marker moved to the top-right
    assert out[10, 10, 0] < 100


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (96, 96), colour) for colour in ((200, 0, 0), (0, 0, 200), (0, 200, 0))]
    path = save(tmp_path, "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(path).n_frames == 3
    out = load_rgb(path)
    assert out.shape == (96, 96, 3)
    assert out[48, 48].tolist() == [200, 0, 0]


def test_animation_seeked_elsewhere_still_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (96, 96), colour) for colour in ((200, 0, 0), (0, 0, 200))]
    path = save(tmp_path, "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=100)
    image = Image.open(path)
    image.seek(1)
    assert load_rgb(image)[0, 0].tolist() == [200, 0, 0]


# --- limits and unusable inputs -----------------------------------------------------------------------------


def test_one_pixel_image_is_rejected(tmp_path):
    rejected(save(tmp_path, "dot.png", Image.new("RGB", (1, 1))), "1x1", "between 64", "resize")


def test_long_thin_image_is_rejected(tmp_path):
    rejected(save(tmp_path, "strip.png", Image.new("RGB", (4000, 10))), "4000x10", "each side", "resize")


def test_extreme_aspect_ratio_is_rejected(tmp_path):
    rejected(save(tmp_path, "banner.png", Image.new("RGB", (1000, 200))), "aspect ratio", "crop")


def test_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header(5000, 5000))  # decoding it would fail as truncated
    message = rejected(path, "5000x5000", "25.0 MP", "16.8 MP", "downscale")
    assert "decoded" not in message


def never_decoded(monkeypatch):
    def load(self):
        raise AssertionError("the picture was decoded")

    monkeypatch.setattr(Image.Image, "load", load)


def test_real_huge_png_is_refused_without_decoding(tmp_path, monkeypatch):
    path = save(tmp_path, "black.png", Image.new("L", (5000, 5000)))
    never_decoded(monkeypatch)
    rejected(path, "25.0 MP", "downscale")


def test_decompression_bomb_is_a_user_error(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(20000, 20000))
    never_decoded(monkeypatch)
    rejected(path, "decompression bomb", "16.8 megapixels")


def test_decompression_bomb_is_refused_even_with_pil_check_disabled(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # some libraries switch PIL's own guard off
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(20000, 20000))
    never_decoded(monkeypatch)
    rejected(path, "20000x20000", "downscale")


def test_text_file_named_png_is_rejected(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some notes, not an image\n")
    rejected(path, "not an image", "upload a png, jpeg")


def test_truncated_jpeg_is_rejected(tmp_path, astronaut):
    whole = tmp_path / "whole.jpg"
    Image.fromarray(astronaut).save(whole, quality=90)
    half = tmp_path / "half.jpg"
    half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    rejected(half, "could not be decoded", "truncated", "save it again")


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><circle r="50"/></svg>'


def test_svg_file_is_rejected_with_export_advice(tmp_path):
    path = tmp_path / "drawing.svg"
    path.write_bytes(SVG)
    rejected(path, "svg", "export it as png or jpeg")


def test_svg_content_without_svg_name_is_recognised(tmp_path):
    path = tmp_path / "upload_3f2a"  # a temp file name that says nothing
    path.write_bytes(SVG)
    rejected(path, "svg", "export it as png or jpeg")
    rejected(SVG, "svg", "export it as png or jpeg")  # bytes too


def test_no_image_says_to_upload_one():
    rejected(None, "no image", "upload")


def test_a_missing_file_gets_the_refusal_a_file_that_is_not_a_picture_gets(tmp_path):
    """The same words for both: a caller cannot tell whether a path exists."""
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    assert rejected(tmp_path / "gone.png", "not an image", "upload a png") == rejected(notes, "not an image")


@pytest.mark.parametrize(
    "value", ["/etc/passwd", "/etc/no-such-file", "file:///etc/passwd", "/proc/self/fd/0", "x" * 5000]
)
def test_a_string_is_never_opened_as_a_path(value, tmp_path):
    """A request's value is data: a str is read as a data: URL or refused, like a file that is not a picture."""
    picture = tmp_path / "real.png"
    Image.new("RGB", (64, 64), "red").save(picture)
    refusal = rejected(str(picture), "not an image")  # a real picture, named by a str: not read
    assert rejected(value, "not an image") == refusal


def test_limits_are_reported_from_the_given_limits(tmp_path):
    from controlnet_demo.settings import Limits

    with pytest.raises(UserInputError, match=r"1\.0 megapixels"):
        load_rgb(png_header(20000, 20000), Limits(max_pixels=1_000_000))


def data_url(image: Image.Image, kind: str = "png") -> str:
    out = io.BytesIO()
    image.save(out, kind)
    return f"data:image/{kind};base64," + base64.b64encode(out.getvalue()).decode("ascii")


def test_a_data_url_decodes_like_the_file_it_holds(tmp_path, astronaut):
    pil = Image.fromarray(astronaut)
    np.testing.assert_array_equal(load_rgb(data_url(pil)), load_rgb(save(tmp_path, "a.png", pil)))
    assert load_rgb(data_url(pil, "jpeg").replace("data:image/", "DATA:image/")).shape == astronaut.shape


def test_a_data_url_over_the_inline_limit_is_refused_before_decoding():
    from controlnet_demo.settings import Limits

    url = data_url(Image.new("RGB", (512, 512), "white"))
    with pytest.raises(UserInputError, match=r"limit is 0 MB.*[Uu]pload it as a file"):
        load_rgb(url, Limits(max_inline_bytes=100))


@pytest.mark.parametrize(
    "url, words",
    [
        ("data:text/plain;base64,aGk=", ["not a base64 image", "data:image/png;base64"]),
        ("data:image/png,plain-text", ["not a base64 image"]),
        ("data:image/png;base64,not base64!", ["not valid base64"]),
        ("data:image/png;base64,aGk=", ["not an image", "png"]),
        ("data:image/png;base64," + base64.b64encode(png_header(30000, 30000)).decode(), ["megapixels"]),
    ],
)
def test_a_bad_data_url_is_refused_in_words(url, words):
    rejected(url, *words)


# --- sizes --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, longer, expected",
    [
        ((600, 400), 768, (768, 512)),
        ((400, 600), 768, (512, 768)),
        ((512, 512), 640, (640, 640)),
        ((1920, 1080), 1024, (1024, 576)),
        ((4096, 1024), 512, (512, 128)),
    ],
)
def test_fit_resolution_keeps_aspect_in_multiples_of_64(size, longer, expected):
    width, height = fit_resolution(size, longer)
    assert (width, height) == expected
    assert width % 64 == 0 and height % 64 == 0
    assert abs(width / height - size[0] / size[1]) < 64 / min(width, height)


@pytest.mark.parametrize("size", [(256, 192), (1024, 768), (333, 500)])
def test_resize_returns_the_requested_size(coffee, size):
    out = resize(coffee, size)
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8


def test_nearest_resize_keeps_mask_values(coffee):
    mask = np.where(coffee > 128, 255, 0).astype(np.uint8)
    out = resize(mask, (900, 600), nearest=True)
    assert set(np.unique(out)) <= {0, 255}
