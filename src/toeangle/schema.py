"""The few nouns of toeangle, defined once and shared by the CLI, the API and batch runs.

Coordinates are always pixels of the original photo (after EXIF orientation), x to the
right and y down, so that a phone app can draw them on the picture it holds.
"""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple, Union, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

LANDMARK_NAMES: tuple[str, ...] = ("heel", "first_metatarsal", "first_mtp", "hallux_ip", "hallux_tip")
"""The contract's five landmarks (../shared/find/README.md), heel to toe."""

# Named aliases: each is one component of the OpenAPI document (one enum in a generated client).
# Their values: get_args(Protocol.__value__).
Protocol = TypeAliasType("Protocol", Literal["passive_nwb", "active_nwb", "weight_bearing", "heel_raise", "walking",
                                             "running"])
"""The test position: how the toe was bent when the photo was taken, or the movement a clip shows
(walking and running: clips only, the angle at push-off) (GET /v1/protocols)."""
DEFAULT_PROTOCOL = "passive_nwb"
"""The test a photo is judged by when nothing says otherwise (the reference's default)."""
PROTOCOL_CHOICES: tuple[str, ...] = (*get_args(Protocol.__value__), "auto")


def _one_protocol_error(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """One error naming every choice, not one per member of the union."""
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError("literal_error", "Input should be {expected}",
                                  {"expected": ", ".join(f"'{c}'" for c in PROTOCOL_CHOICES)}) from None


ProtocolChoice = TypeAliasType("ProtocolChoice", Annotated[
    Union[Protocol, Literal["auto"]], WrapValidator(_one_protocol_error)])  # noqa: UP007 (a named union)
"""What a user asks for: a test position, or `auto`: the one the photo's posture shows (photos only; the
OpenAPI document refers to Protocol for the tests rather than repeating them)."""
Side = TypeAliasType("Side", Literal["left", "right"])
TOE_STATES: tuple[str, ...] = ("raised", "resting")
"""The big toe bent back (by a hand, an object or its own muscles: who did it does not show), or resting."""
ToeState = TypeAliasType("ToeState", Literal[TOE_STATES])  # type: ignore[valid-type]

REASON_CODES: dict[str, str] = {
    "no_foot": "no foot found in the photo",
    "foot_unreliable": "no foot could be found reliably (the model reads the photo differently when it is turned)",
    "off_axis": "the view is too far from side-on (e.g. looking down at the foot)",
    "toe_cut_off": "the big toe or forefoot is cut off at the edge of the photo",
    "foot_too_small": "the foot is too small in the photo",
    "too_dark": "too dark around the toe",
    "overexposed": "overexposed around the toe",
    "blurred": "the toe region is too blurred",
    "outer_side": "the outer side of the foot, where the big-toe joint is hidden",
    "heel_unsure": "the heel could not be placed reliably, so the angle's sign is unsure",
    "landmarks_uncertain": "the toe's landmarks are too uncertain",
    "markers_not_found": "skin markers: not 3 or 4 green stickers of one size, placed like a foot's",
    "markers_off_foot": "skin markers: the green stickers are not on a foot",
    "unusable_landmarks": "the landmarks found cannot be measured (missing, coincident, heel on the axis)",
    "foot_lost": "clips: the foot moved too far between frames to be followed (it is looked for again)",
    "too_few_frames": "clips: too few frames could be measured for a curve",
    "no_heel_raise": "clips: the heel was not seen leaving the floor",
    "no_push_off": "clips: no step's push-off was seen",
}
"""Why a photo is refused: a stable code (for apps, to localise) and what it means. The texts beside
each code in an answer say more (the numbers measured) and may change; the codes do not."""
ReasonCode = TypeAliasType("ReasonCode", Annotated[
    Literal[tuple(REASON_CODES)],  # type: ignore[valid-type]
    Field(description="Why a photo cannot be measured; stable. " + "; ".join(f"`{code}`: {text}"
                                                                           for code, text in REASON_CODES.items()))])


class Reason(NamedTuple):
    """One refusal, as the detectors give it: a ReasonCode and the text a person reads."""

    code: str
    text: str


MAX_COORDINATE_PX = 1e6
"""No photo is near a million pixels on a side (phones' largest are about 16,000): a coordinate, size or
sigma beyond this is a client's mistake (or an attack on the arithmetic), refused when parsed."""

MAX_SIGMA_DEG = 180.0
"""An angle uncertainty beyond half a turn says nothing."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Point(_Frozen):
    """One landmark: where it is and how sure the detector was.

    Accepts ``[x, y]`` as well as ``{"x": .., "y": ..}`` so that hand-written points stay short.
    """

    x: float = Field(allow_inf_nan=False, ge=-MAX_COORDINATE_PX, le=MAX_COORDINATE_PX)
    y: float = Field(allow_inf_nan=False, ge=-MAX_COORDINATE_PX, le=MAX_COORDINATE_PX)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0, description="0..1; None for manual points")
    sigma_px: float | None = Field(
        default=None, ge=0.0, le=MAX_COORDINATE_PX, allow_inf_nan=False,
        description="Calibrated positional uncertainty (1 sigma, pixels); None when unknown",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError("a point is [x, y]")
            return {"x": value[0], "y": value[1]}
        return value

    @field_serializer("x", "y")
    def _to_hundredths(self, value: float) -> float:
        """Answers carry 0.01 px: finer is noise, and 15 decimals only weigh."""
        return round(value, 2)

    @property
    def xy(self) -> tuple[float, float]:
        return (self.x, self.y)


class Landmarks(_Frozen):
    """The five landmarks; any may be missing (not found, or not sent)."""

    heel: Point | None = None
    first_metatarsal: Point | None = None
    first_mtp: Point | None = None
    hallux_ip: Point | None = None
    hallux_tip: Point | None = None

    def present(self) -> dict[str, Point]:
        return {name: p for name in LANDMARK_NAMES if (p := getattr(self, name)) is not None}

    def scaled(self, sx: float, sy: float) -> Landmarks:
        """The same landmarks in a resized image's pixels (sigma scales with the mean factor)."""
        mean = (abs(sx) + abs(sy)) / 2
        return Landmarks(**{
            name: p.model_copy(update={
                "x": p.x * sx, "y": p.y * sy,
                "sigma_px": None if p.sigma_px is None else p.sigma_px * mean,
            })
            for name, p in self.present().items()
        })


class ViewCorrection(_Frozen):
    """How far the angle between the drawn points is from the foot's own (sagittal) angle.

    A photo shows the toe in perspective: a camera 15 degrees off side-on, or a close wide-angle
    shot, turns the phalanx line by several degrees. The keypoint model estimates this from the
    crop's appearance; the measured angle is the 2D angle plus ``degrees``.
    """

    degrees: float = Field(ge=-45, le=45, allow_inf_nan=False,
                           description="3D angle minus the 2D angle of the model's own points, estimated")
    sigma_deg: float = Field(ge=0, le=MAX_SIGMA_DEG, allow_inf_nan=False, description="1-sigma uncertainty of the estimate")
    moved_points_deg: float | None = Field(
        default=None, ge=-45, le=45, allow_inf_nan=False,
        description="The same for points placed by hand: the perspective alone. `degrees` also takes back the "
                    "model's own points' expected error, which dragged points no longer carry")
    moved_points_sigma_deg: float | None = Field(default=None, ge=0, le=MAX_SIGMA_DEG, allow_inf_nan=False)

    def for_moved_points(self) -> ViewCorrection:
        """The correction for points that may have been moved by hand (from-landmarks)."""
        if self.moved_points_deg is None or self.moved_points_sigma_deg is None:
            return self
        return ViewCorrection(degrees=self.moved_points_deg, sigma_deg=self.moved_points_sigma_deg)


class ImageInfo(_Frozen):
    width: int = Field(gt=0, le=MAX_COORDINATE_PX, description="Original photo width in pixels, after EXIF orientation")
    height: int = Field(gt=0, le=MAX_COORDINATE_PX)
    format: str | None = Field(default=None, description="JPEG, PNG, WEBP or HEIF")


class Measurement(_Frozen):
    """The angle itself, and what it rests on."""

    angle_deg: float = Field(allow_inf_nan=False,
                             description="Hallux dorsiflexion: metatarsal axis vs proximal phalanx; + is up")
    angle_2d_deg: float = Field(allow_inf_nan=False, description="The angle between the drawn points; differs from angle_deg by the "
                                "view correction, when there is one")
    view_correction: ViewCorrection | None = Field(
        default=None, description="Perspective correction estimated from the photo (keypoint model only)")
    uncertainty_deg: float | None = Field(
        default=None, allow_inf_nan=False, description="Half-width of a ~90% interval; None when landmarks carry no uncertainty",
    )
    phalanx_point: Literal["hallux_ip", "hallux_tip"] = Field(
        description="End of the phalanx axis; hallux_tip only as a fallback, and it overstates the angle",
    )
    notes: tuple[str, ...] = ()


class Grade(_Frozen):
    system: str = "Coughlin & Shurnas 2003"
    grade: int = Field(ge=0, le=4)
    description: str
    basis: Literal["angle", "side_to_side_loss", "angle_and_pain"]


VerdictLabel = TypeAliasType("VerdictLabel", Literal["normal", "restricted", "borderline", "test-mismatch"])
"""`test-mismatch`: the photo's posture is not the test it is judged by (the summary says what it shows)."""


class Verdict(_Frozen):
    protocol: Protocol = Field(description="The test judged by: the one asked for, or the one `auto` picked")
    label: VerdictLabel
    normal_min_deg: float = Field(description="The protocol's normal threshold")
    suggested_protocol: Protocol | None = Field(
        default=None, description="With `test-mismatch`: the test the photo's posture fits, when one does")
    suggested_normal_min_deg: float | None = Field(default=None, description="That test's normal threshold")
    grade: Grade | None = None
    side_to_side_loss_pct: float | None = Field(
        default=None, description="How much less this toe bends than the other foot's, in percent",
    )
    summary: str


class Exercise(_Frozen):
    id: str
    name: str
    how: str
    dose: str
    source: str


class Routine(_Frozen):
    severity: Literal["normal", "mild", "moderate", "severe"]
    exercises: tuple[Exercise, ...]
    see_clinician: bool
    advice: str
    disclaimer: str


class Quality(_Frozen):
    """Whether the photo supports a number, and if not, why."""

    status: Literal["ok", "unmeasurable"]
    reasons: tuple[str, ...] = ()
    reason_codes: tuple[ReasonCode, ...] = ()

    @classmethod
    def ok(cls) -> Quality:
        return cls(status="ok")

    @classmethod
    def refuse(cls, *reasons: Reason) -> Quality:
        return cls(status="unmeasurable", reasons=tuple(r.text for r in reasons),
                   reason_codes=tuple(r.code for r in reasons))


class Posture(_Frozen):
    """How the foot is placed, as probabilities read from its landmarks in the upright photo
    (posture_reading.py): placed as a standing foot is, heel raised, and the big toe's state."""

    standing: float = Field(ge=0.0, le=1.0, allow_inf_nan=False,
                            description="Probability that the foot is placed as a standing foot is (flat on a floor, "
                                        "or up on its toes); weight itself does not show, so it stays at most 0.7")
    heel_raised: float = Field(ge=0.0, le=1.0, allow_inf_nan=False,
                               description="Probability that the heel is raised off the floor")
    toe: dict[ToeState, Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]] = Field(
        description="Probability of each toe state; they sum to 1")

    @model_validator(mode="after")
    def _toe_states_sum_to_one(self) -> Posture:
        """Every state, once, summing to 1 (to 0.01: answers may carry rounded values back)."""
        if set(self.toe) != set(TOE_STATES) or abs(sum(self.toe.values()) - 1.0) > 0.01:
            raise ValueError(f"toe needs a probability for each of {', '.join(TOE_STATES)}, summing to 1")
        return self


PostureFit = TypeAliasType("PostureFit", Literal["match", "unsure", "mismatch"])
"""How the photo's posture fits the test it is judged by (posture.py's thresholds)."""


class PostureReport(Posture):
    """The photo's posture (read from its landmarks) against the test: the answer's `posture`."""

    seen: str = Field(description="What the photo shows, in words, e.g. 'a relaxed standing foot, big toe resting'")
    tests: dict[Protocol, float] = Field(description="Probability that the photo shows each test's posture (the four "
                                                     "photo tests; walking and running are clips' movements)")
    protocol: Protocol = Field(description="The test compared with: the one asked for, or the one `auto` picked")
    fit: PostureFit = Field(description="`match`: the photo shows that test; `mismatch`: it shows something else "
                                        "(the verdict is then `test-mismatch`); `unsure`: cannot tell")
    suggested_protocol: Protocol | None = Field(default=None, description="On a mismatch, the test the photo fits")
    switch_to: Protocol | None = Field(default=None, description=(
        "The suggested test when the photo already shows it, so that this same photo can be judged by it (the "
        "page's one-tap switch); None when the photo must be taken again, e.g. a relaxed foot placed for it"))
    advice: str | None = Field(default=None, description="On a mismatch or when unsure: what the photo shows and "
                                                         "what to do, for a person to read")


class Detection(_Frozen):
    """What a landmark detector found in one photo."""

    landmarks: Landmarks
    detector: str = Field(description="Which detector path produced the landmarks")
    quality: Quality
    view_correction: ViewCorrection | None = None


class MeasureOptions(_Frozen):
    """What the user tells us besides the photo."""

    protocol: ProtocolChoice = Field(default=DEFAULT_PROTOCOL, description=(
        "The test position, or `auto`: picked from the posture the landmarks show (`passive_nwb` when they show "
        "none: a toe point missing, or a view that hides how the foot stands)"))
    side: Side | None = None
    other_foot_angle_deg: float | None = Field(
        default=None, ge=-90, le=180, allow_inf_nan=False,
        description="The other foot's angle, same protocol, for the side-to-side comparison",
    )
    pain: bool = Field(default=False, description="Pain in mid-range passive motion (raises grade 3 to 4)")


class MeasurementResult(_Frozen):
    """The whole answer for one photo (or one set of points)."""

    status: Literal["ok", "unmeasurable"]
    reasons: tuple[str, ...] = Field(default=(), description="Why the photo cannot be measured, for a person to read")
    reason_codes: tuple[ReasonCode, ...] = Field(
        default=(), description="The same reasons as stable codes, one per text in `reasons`, in the same order")
    image: ImageInfo | None = None
    detector: str
    landmarks: Landmarks
    measurement: Measurement | None = None
    verdict: Verdict | None = None
    routine: Routine | None = Field(default=None, description="None when unmeasurable or `test-mismatch`")
    posture: PostureReport | None = Field(
        default=None, description="The posture the landmarks show against the test (any detector, given points and "
                                  "from-landmarks alike); None without heel, first_metatarsal, first_mtp and a toe "
                                  "point, or when the photo is refused for its view and does not show a standing foot")
    options: MeasureOptions
    timings_ms: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ok_means_measured(self) -> MeasurementResult:
        """An answer that says ok always carries the angle (finite: Measurement refuses NaN) and the verdict."""
        if self.status == "ok" and (self.measurement is None or self.verdict is None):
            raise ValueError("status ok needs a measurement and a verdict")
        return self


# ---- clips ------------------------------------------------------------------------------------

class VideoInfo(_Frozen):
    """What the clip's header says (width and height upright, after the container's rotation)."""

    width: int = Field(gt=0, le=MAX_COORDINATE_PX)
    height: int = Field(gt=0, le=MAX_COORDINATE_PX)
    fps: float | None = Field(default=None, description="Nominal frame rate; frames are timed by their own timestamps")
    frames: int | None = Field(default=None, description="Frame count from the header, when it has one")
    duration_s: float | None = None
    rotation_deg: int = Field(default=0, description="The container's rotation, applied to every frame")
    container: str
    codec: str | None = None


class FrameReading(_Frozen):
    """One frame of a clip: whether it was measured, how its landmarks were found, and its angle."""

    index: int = Field(ge=0)
    time_s: float = Field(description="Presentation time (variable frame rates keep their real timing)")
    status: Literal["ok", "unmeasurable"]
    reason_codes: tuple[ReasonCode, ...] = ()
    found_by: Literal["detector", "followed", "given", "skipped"] = Field(
        description="detector: the whole frame was searched (stage 1 and 2); followed: only the forefoot crop the "
                    "previous frame set (stage 2); given: the caller's points; skipped: not searched, after 10 frames "
                    "searched in vain only every 5th is (a gap with the last search's reasons)")
    angle_deg: float | None = Field(default=None, description="This frame's angle; None when unmeasurable (a gap)")
    uncertainty_deg: float | None = None
    smoothed_deg: float | None = Field(default=None, description="The curve after smoothing; None in gaps")
    heel_off: bool | None = Field(default=None, description="Whether the heel is off the floor (heel raise)")
    landmarks: Landmarks | None = None


class Step(_Frozen):
    """One push-off: the frame where the toe bends furthest before it leaves the ground."""

    frame: int
    time_s: float
    angle_deg: float


class Movement(_Frozen):
    """What the curve shows for the protocol: the heel raise's peak, or the push-off of each step."""

    protocol: Protocol
    angle_deg: float = Field(description="heel_raise: the peak while the heel is off the floor; walking/running: "
                                         "the mean push-off angle over the steps")
    uncertainty_deg: float | None = Field(
        default=None, description="Half-width of a ~90% interval: the key frame's own uncertainty and the curve's "
                                  "frame-to-frame scatter around its smoothing, combined")
    spread_deg: float | None = Field(default=None, description="Standard deviation over the steps (2 or more)")
    key_frame: int = Field(description="The frame shown: the peak, or the step closest to the mean")
    key_time_s: float
    steps: tuple[Step, ...] = ()
    heel_off_frames: int | None = Field(default=None, description="heel_raise: frames with the heel off the floor")
    notes: tuple[str, ...] = ()


class VideoResult(_Frozen):
    """The whole answer for one clip."""

    status: Literal["ok", "unmeasurable"]
    reasons: tuple[str, ...] = ()
    reason_codes: tuple[ReasonCode, ...] = Field(
        default=(), description="Stable codes: too_few_frames, no_heel_raise or no_push_off, then the frames' most "
                                "common codes")
    video: VideoInfo
    detector: str
    frames: tuple[FrameReading, ...]
    frames_followed: int = Field(description="Frames measured from the previous frame's crop alone (stage 2)")
    movement: Movement | None = None
    measurement: Measurement | None = Field(default=None, description="The key frame's measurement")
    verdict: Verdict | None = None
    routine: Routine | None = None
    options: MeasureOptions
    timings_ms: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ok_means_measured(self) -> VideoResult:
        if self.status == "ok" and (self.movement is None or self.verdict is None):
            raise ValueError("status ok needs a movement and a verdict")
        return self
