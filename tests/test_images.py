"""The one image reader (`data.images.read_rgb`): pixels as stored, EXIF orientation ignored, the same pixels
for mining, training, pretraining and every picture."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from talking_points.pipeline.data.errors import BadInput
from talking_points.pipeline.data.images import read_rgb
from talking_points.pipeline.keypoints.mine import read_image
from talking_points.pipeline.training.data import load_image
from talking_points.pipeline.visualize import read_rgb as visual_rgb

REPO = Path(__file__).resolve().parents[1]
W, H = 64, 40  # not square: a rotation by 90 degrees changes the shape
ROTATE_90_CW = 6  # EXIF orientation: the stored pixels are to be shown rotated 90 degrees clockwise


def pattern() -> np.ndarray:
    """(H, W, 3) smooth, asymmetric picture (no rotation or flip maps it onto itself)."""
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([4 * xx, 6 * yy, 255 - 2 * xx - 3 * yy], axis=-1)
    rgb[2:12, 2:20] = (250, 250, 0)  # a yellow block in the top-left corner
    return np.clip(rgb, 0, 255).astype(np.uint8)


def tagged_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = ROTATE_90_CW
    return exif


def with_orientation(jpeg: bytes) -> bytes:
    """`jpeg` with an APP1 Exif segment (orientation 6) inserted after its APP0, entropy data untouched."""
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    at = 2
    if jpeg[2:4] == b"\xff\xe0":  # keep JFIF's APP0 first
        at = 4 + int.from_bytes(jpeg[4:6], "big")
    payload = tagged_exif().tobytes()
    assert payload.startswith(b"Exif\x00\x00")
    return jpeg[:at] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[at:]


def assert_ignored_orientation(tagged: Path, plain: Path, width: int, height: int) -> None:
    with Image.open(tagged) as im:
        assert im.getexif().get(0x0112) == ROTATE_90_CW
    # the tag is real: OpenCV's default decode applies it, which is what the models must never see
    assert cv2.imread(str(tagged), cv2.IMREAD_COLOR).shape == (width, height, 3)
    stored = read_rgb(plain)
    assert stored.shape == (height, width, 3) and stored.dtype == np.uint8
    assert np.array_equal(read_rgb(tagged), stored)


def test_reader_ignores_the_exif_orientation(tmp_path):
    tagged, plain = tmp_path / "tagged.jpg", tmp_path / "plain.jpg"
    Image.fromarray(pattern()).save(tagged, quality=95, exif=tagged_exif())
    Image.fromarray(pattern()).save(plain, quality=95)
    assert_ignored_orientation(tagged, plain, W, H)
    # the stored picture, not a rotated or flipped one (a 180-degree turn would keep the shape)
    got = read_rgb(tagged).astype(int)
    assert np.abs(got - pattern()).mean() < 3
    assert np.abs(got - pattern()[::-1, ::-1]).mean() > 30


def test_training_mining_and_pictures_get_the_same_pixels(tmp_path):
    file = tmp_path / "tagged.jpg"
    Image.fromarray(pattern()).save(file, quality=95, exif=tagged_exif())
    stored = read_rgb(file)
    assert stored.shape == (H, W, 3)
    # training and inference: at the image's own size the area resize keeps every pixel
    assert np.array_equal(load_image(str(file), (H, W)).transpose(1, 2, 0), stored)
    # mining (and the synthesis visuals and the keypoint-set readers, which use it), against the table's size
    assert np.array_equal(read_image(str(file), W, H), stored)
    with pytest.raises(BadInput, match="mask size disagrees with image"):
        read_image(str(file), H, W)  # the rotated size is not the stored one
    # what the marks are drawn on (tp describe / localize --draw, the demo, the annotation sheets)
    assert np.array_equal(visual_rgb(file), stored)


def test_real_jpeg_with_an_orientation_tag(real_fixtures, tmp_path):
    """A real Pascal-Part JPEG with an orientation tag spliced in (the coded image untouched): read as stored."""
    plain = real_fixtures / "pascal_part_mat" / "2008_000939.jpg"
    tagged = tmp_path / "2008_000939.jpg"
    tagged.write_bytes(with_orientation(plain.read_bytes()))
    assert_ignored_orientation(tagged, plain, 500, 375)
    assert np.array_equal(load_image(str(tagged), (375, 500)).transpose(1, 2, 0), read_rgb(plain))


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(BadInput, match=r"gone\.png: missing image file"):
        read_rgb(tmp_path / "gone.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(BadInput, match=r"empty\.jpg: unreadable image"):
        read_rgb(tmp_path / "empty.jpg")
    (tmp_path / "text.png").write_bytes(b"not an image at all")
    with pytest.raises(BadInput, match=r"text\.png: unreadable image"):
        load_image(str(tmp_path / "text.png"), (8, 8))
    good = tmp_path / "half.jpg"
    Image.fromarray(pattern()).save(good, quality=95)
    good.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BadInput, match=r"half\.jpg: corrupt image"):
        visual_rgb(good)


def test_grey_and_rgba_files_come_back_as_rgb(tmp_path):
    Image.fromarray(pattern()[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([pattern(), np.full((H, W), 7, np.uint8)])).save(tmp_path / "rgba.png")
    assert np.array_equal(read_rgb(tmp_path / "grey.png"), np.repeat(pattern()[..., :1], 3, axis=-1))
    assert np.array_equal(read_rgb(tmp_path / "rgba.png"), pattern())


def test_no_other_image_decoder_in_the_package():
    """Every image read goes through data/images.py: no other module decodes an image file into pixels."""
    decoders = re.compile(r"cv2\.imread|cv2\.imdecode|IMREAD_|\.convert\(\s*[\"']RGB|exif_transpose")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sorted((REPO / "talking_points").rglob("*.py"))
        if path.relative_to(REPO).as_posix() != "talking_points/pipeline/data/images.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if decoders.search(line)
    ]
    assert offenders == []
