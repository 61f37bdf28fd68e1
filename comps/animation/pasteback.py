"""A square face region from five landmarks: crop it out of the avatar frame, paste a face back softly.

SadTalker renders a square face (256 or 512 pixels). The region is upstream SadTalker's source crop
(its `Preprocesser.align_face`, the FFHQ rule): an oriented square from the eyes and the mouth,
side `2 max(2 |eye_to_eye|, 1.8 |eye_to_mouth|)`, centred a tenth of the way from the eyes to the
mouth; upstream cuts the axis-aligned bounding box of that square, and so do we. Upstream takes
the eyes and mouth corners from 68 landmarks; the five landmarks of the face track (eye centres,
nose, mouth corners) give the same points. Where the region reaches past the frame edges upstream
clips it (and then stretches the clipped rectangle to a square); ours replicates the border, so the
face keeps its proportions, and the paste-back writes only the part inside the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from comps.animation.track import Frame

# Width of the soft edge of the paste mask, as a fraction of the region side (linear ramp 0 -> 1).
FEATHER = 0.1


@dataclass(frozen=True)
class Region:
    """A square in frame pixels: top-left corner `(y, x)` and `side`; may extend past the frame."""

    y: int
    x: int
    side: int

    def contains(self, yy: int, xx: int) -> bool:
        """Whether the pixel (yy, xx) lies inside the square."""
        return self.y <= yy < self.y + self.side and self.x <= xx < self.x + self.side


def landmark_region(points: npt.NDArray[np.float32]) -> Region:
    """The square region around upstream SadTalker's FFHQ quad, from five landmarks (x, y; pixels).

    Raises:
        ValueError: the eyes and the mouth coincide (no face size to derive the region from).
    """
    eye_left, eye_right, _, mouth_left, mouth_right = np.asarray(points, np.float64).reshape(5, 2)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_avg
    x = eye_to_eye + np.array([eye_to_mouth[1], -eye_to_mouth[0]])  # eye_to_eye minus the mouth vector turned 90°
    half = max(2.0 * np.hypot(*eye_to_eye), 1.8 * np.hypot(*eye_to_mouth))
    if np.hypot(*x) == 0 or half == 0:
        raise ValueError("the eye and mouth landmarks coincide; no face region can be derived from them")
    x *= half / np.hypot(*x)
    y = np.array([-x[1], x[0]])
    centre = eye_avg + 0.1 * eye_to_mouth
    extent = np.abs(x) + np.abs(y)  # half the bounding box of the square spanned by x and y
    side = max(2, round(2 * float(extent.max())))
    return Region(y=round(centre[1] - side / 2), x=round(centre[0] - side / 2), side=side)


def crop_square(frame: Frame, region: Region, size: int) -> npt.NDArray[np.uint8]:
    """The region of `frame`, edges replicated where it leaves the frame, resized to `size` x `size`."""
    height, width = frame.shape[:2]
    top, left = max(0, -region.y), max(0, -region.x)
    bottom = max(0, region.y + region.side - height)
    right = max(0, region.x + region.side - width)
    padded = cv2.copyMakeBorder(frame, top, bottom, left, right, cv2.BORDER_REPLICATE)
    y, x = region.y + top, region.x + left
    square = padded[y : y + region.side, x : x + region.side]
    interpolation = cv2.INTER_AREA if region.side > size else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(square, (size, size), interpolation=interpolation), np.uint8)


def soft_mask(side: int, *, feather: float = FEATHER) -> npt.NDArray[np.float32]:
    """A (side, side, 1) weight: 1 in the middle, ramping linearly to 0 over the outer `feather * side` pixels."""
    ramp = max(1.0, feather * side)
    distance = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32) + 0.5  # to the nearest edge
    edge = np.clip(distance / ramp, 0.0, 1.0)
    mask: npt.NDArray[np.float32] = np.minimum.outer(edge, edge)[..., None].astype(np.float32)
    return mask


class PasteBack:
    """Pastes square faces into copies of one frame at one region; the resized mask is computed once."""

    def __init__(self, frame: Frame, region: Region) -> None:
        """Plan the paste: the part of the region inside the frame and its mask."""
        height, width = frame.shape[:2]
        self.frame = frame
        self.region = region
        self._y0, self._x0 = max(0, region.y), max(0, region.x)
        self._y1, self._x1 = min(height, region.y + region.side), min(width, region.x + region.side)
        if self._y1 <= self._y0 or self._x1 <= self._x0:
            raise ValueError(f"face region {region} lies outside the {width}x{height} frame")
        inner = (slice(self._y0 - region.y, self._y1 - region.y), slice(self._x0 - region.x, self._x1 - region.x))
        self._inner = inner
        self._mask = soft_mask(region.side)[inner]
        self._background = frame[self._y0 : self._y1, self._x0 : self._x1].astype(np.float32)

    def paste(self, face: npt.NDArray[np.uint8]) -> Frame:
        """A copy of the frame with `face` (square, BGR uint8, any size) resized onto the region and blended."""
        side = self.region.side
        interpolation = cv2.INTER_AREA if face.shape[0] > side else cv2.INTER_CUBIC
        resized = cv2.resize(face, (side, side), interpolation=interpolation)[self._inner].astype(np.float32)
        blended = self._mask * resized + (1.0 - self._mask) * self._background
        out = self.frame.copy()
        out[self._y0 : self._y1, self._x0 : self._x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        return out
