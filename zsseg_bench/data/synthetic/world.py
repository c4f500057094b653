"""The toy world: the single place that states its classes and its seen/unseen split.

The world has six colours and six shapes. Twenty of the 36 colour x shape combinations are
object classes; class id 0 is ``background`` (everything that is not an object).

Class ids (contiguous, the order of :data:`CLASS_NAMES`)::

    0  background
    1.. object classes, colour-major in the order of :data:`COLOURS` / :data:`SHAPES`

Zero-shot split. Five object classes are *unseen*. Every unseen class's colour and every
unseen class's shape each occur among the seen object classes, so the concepts needed to
recognise an unseen class were seen in training, only not in that combination (checked by
:func:`check_split`, run at import time).

Background. ``background`` is a class of its own and a *seen* class. It is evaluated as an
ordinary seen class: its pixels count in the confusion matrix like any other class, its IoU
enters mIoU and mIoU-seen (and so hIoU). It is never mapped to ignore (unlike PASCAL VOC,
whose background the real benchmark excludes).

The world has no ignore pixels: every pixel of a label map is a class id.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Version of the world definition + renderer. Bump it whenever classes, split or rendering
#: change, so prepared datasets on disk (``info.json``) are detected as stale.
WORLD_VERSION = 1

#: Object colours, name -> RGB (0-255). Chosen far apart in RGB and far from the
#: low-saturation background palette.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (35, 190, 50),
    "blue": (35, 70, 235),
    "yellow": (240, 225, 35),
    "purple": (170, 50, 215),
    "cyan": (35, 215, 225),
}

#: Shapes, chosen to stay distinct at 8-px patch resolution: filled disk, filled square,
#: filled upright triangle, plus-shaped cross, ring (annulus) and a horizontal bar (aspect ~3:1).
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring", "bar")

BACKGROUND_NAME = "background"
#: Id of the background class (a seen class, evaluated like any other).
BACKGROUND_ID = 0

# Object classes as (colour, shape). Each colour takes three consecutive shapes (offsets 0, 1, 2
# on the cyclic shape order) so every colour and every shape appears in exactly three
# classes; red cross and yellow circle are added to reach 20 object classes.
_OBJECT_CLASSES: tuple[tuple[str, str], ...] = (
    ("red", "circle"), ("red", "square"), ("red", "triangle"), ("red", "cross"),
    ("green", "square"), ("green", "triangle"), ("green", "cross"),
    ("blue", "triangle"), ("blue", "cross"), ("blue", "ring"),
    ("yellow", "circle"), ("yellow", "cross"), ("yellow", "ring"), ("yellow", "bar"),
    ("purple", "circle"), ("purple", "ring"), ("purple", "bar"),
    ("cyan", "circle"), ("cyan", "square"), ("cyan", "bar"),
)  # fmt: skip

#: Unseen object classes (colour, shape): one per colour except purple, one per shape except
#: square, each colour and shape also present among the seen classes.
_UNSEEN: tuple[tuple[str, str], ...] = (
    ("red", "triangle"),
    ("green", "cross"),
    ("blue", "ring"),
    ("yellow", "bar"),
    ("cyan", "circle"),
)


def class_name(colour: str, shape: str) -> str:
    """Name of an object class, e.g. ``"red circle"`` (used verbatim in prompts)."""
    return f"{colour} {shape}"


#: All class names in id order; ``CLASS_NAMES[0] == "background"``.
CLASS_NAMES: tuple[str, ...] = (BACKGROUND_NAME,) + tuple(
    class_name(c, s) for c, s in _OBJECT_CLASSES
)
NUM_CLASSES = len(CLASS_NAMES)
#: Ids of object classes (all classes but background), in id order.
OBJECT_CLASS_IDS: tuple[int, ...] = tuple(range(1, NUM_CLASSES))
#: (colour, shape) of every object class id; ``None`` for background.
CLASS_ATTRIBUTES: tuple[tuple[str, str] | None, ...] = (None,) + _OBJECT_CLASSES
#: Unseen class ids (sorted).
UNSEEN_CLASS_IDS: tuple[int, ...] = tuple(
    sorted(CLASS_NAMES.index(class_name(c, s)) for c, s in _UNSEEN)
)
#: Seen class ids (sorted), background included.
SEEN_CLASS_IDS: tuple[int, ...] = tuple(i for i in range(NUM_CLASSES) if i not in UNSEEN_CLASS_IDS)


def check_split(
    attributes: Sequence[tuple[str, str] | None],
    seen_ids: Sequence[int],
    unseen_ids: Sequence[int],
) -> None:
    """Check the zero-shot split rule of the toy world.

    Args:
        attributes: (colour, shape) per class id, ``None`` for background.
        seen_ids: seen class ids.
        unseen_ids: unseen class ids.

    Raises:
        ValueError: if the split is not a partition of the class ids, background is unseen, or an
            unseen class's colour or shape occurs in no seen object class.
    """
    seen, unseen = set(seen_ids), set(unseen_ids)
    if seen & unseen or seen | unseen != set(range(len(attributes))):
        raise ValueError("seen and unseen class ids must partition the class ids")
    for i in unseen:
        if attributes[i] is None:
            raise ValueError(f"class {i} (background) cannot be unseen")
    seen_colours = {attributes[i][0] for i in seen if attributes[i] is not None}
    seen_shapes = {attributes[i][1] for i in seen if attributes[i] is not None}
    for i in unseen:
        colour, shape = attributes[i]
        if colour not in seen_colours:
            raise ValueError(f"unseen class {i} ({colour} {shape}): colour never seen")
        if shape not in seen_shapes:
            raise ValueError(f"unseen class {i} ({colour} {shape}): shape never seen")


def colour_of(class_id: int) -> str:
    """Colour name of an object class id."""
    attr = CLASS_ATTRIBUTES[class_id]
    if attr is None:
        raise ValueError("background has no colour")
    return attr[0]


def shape_of(class_id: int) -> str:
    """Shape name of an object class id."""
    attr = CLASS_ATTRIBUTES[class_id]
    if attr is None:
        raise ValueError("background has no shape")
    return attr[1]


assert len(set(_OBJECT_CLASSES)) == len(_OBJECT_CLASSES), "duplicate object class"
assert all(c in COLOURS and s in SHAPES for c, s in _OBJECT_CLASSES), "unknown colour/shape"
check_split(CLASS_ATTRIBUTES, SEEN_CLASS_IDS, UNSEEN_CLASS_IDS)
