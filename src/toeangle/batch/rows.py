"""One flat row per photo (or clip), defined once and written as CSV (flat columns) or JSONL (nested).

A row carries the answer (status, angle, verdict, grade, landmarks with confidences,
quality reasons or the error) plus what ``--resume`` compares (path, size, mtime) and
the protocol it was scored for.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..clinical import load_rules
from ..posture import assess
from ..schema import (
    LANDMARK_NAMES,
    TOE_STATES,
    Grade,
    Landmarks,
    Measurement,
    MeasurementResult,
    MeasureOptions,
    Point,
    Posture,
    PostureFit,
    Verdict,
    VerdictLabel,
    VideoResult,
)
from .discover import resume_key

Status = Literal["ok", "unmeasurable", "error"]
"""ok: measured; unmeasurable: a readable photo the detector refused (reasons say why);
error: the file could not be scored at all (not an image, corrupt, unreadable)."""

REASON_SEP = " | "

LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"{name}_{part}" for name in LANDMARK_NAMES
                                          for part in ("x", "y", "conf", "sigma"))
"""Per landmark: position (original photo pixels), detector confidence 0..1, positional sigma (pixels)."""
POSTURE_COLUMNS: tuple[str, ...] = (
    "judged_by", "test_probability", "posture_fit", "suggested_protocol", "standing", "heel_raised",
    "toe_raised", "toe_resting")
"""The test the photo was judged by (the one `auto` picked), how sure the photo shows it, how its posture
fits it and the test it fits instead; the posture's probabilities. Empty without a posture."""
CSV_COLUMNS: tuple[str, ...] = (
    "path", "status", "angle_deg", "uncertainty_deg", "angle_2d_deg", "view_correction_deg", "verdict", "grade",
    "protocol", "normal_min_deg", *POSTURE_COLUMNS, "phalanx_point", "detector", "reasons", "error", *LANDMARK_COLUMNS,
    "width", "height", "format", "key_frame", "frames", "frames_measured", "size", "mtime_ns", "ms", "cpu_ms",
)
"""The CSV header, in order; JSONL has the same fields with ``landmarks`` and ``reasons`` nested."""

_INT = {"grade", "width", "height", "key_frame", "frames", "frames_measured", "size", "mtime_ns"}
_FLOAT = {"angle_deg", "uncertainty_deg", "angle_2d_deg", "view_correction_deg", "normal_min_deg", "ms", "cpu_ms",
          "test_probability", "standing", "heel_raised", "toe_raised", "toe_resting"}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection)."""
_TEXT_COLUMNS = frozenset(CSV_COLUMNS) - _INT - _FLOAT - frozenset(LANDMARK_COLUMNS)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def defuse(cell: str) -> str:
    """A text cell a spreadsheet shows as text: a leading ``'`` before a formula start (and before
    a leading ``'``, so that ``restore`` is exact)."""
    return "'" + cell if cell.startswith((*FORMULA_STARTS, "'")) else cell


def restore(cell: str) -> str:
    """The text ``defuse`` was given."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith((*FORMULA_STARTS, "'")) else cell


class Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    status: Status
    angle_deg: float | None = None
    uncertainty_deg: float | None = None
    angle_2d_deg: float | None = None
    """The angle between the drawn points; angle_deg adds the view correction to it."""
    view_correction_deg: float | None = None
    verdict: VerdictLabel | None = None
    grade: int | None = None
    protocol: str
    """The protocol asked for (``auto`` included): what --resume compares."""
    normal_min_deg: float | None = None
    judged_by: str | None = None
    test_probability: float | None = None
    posture_fit: PostureFit | None = None
    suggested_protocol: str | None = None
    standing: float | None = None
    heel_raised: float | None = None
    toe_raised: float | None = None
    toe_resting: float | None = None
    phalanx_point: str | None = None
    detector: str | None = None
    reasons: tuple[str, ...] = ()
    error: str | None = None
    landmarks: Landmarks = Landmarks()
    width: int | None = None
    height: int | None = None
    format: str | None = None
    key_frame: int | None = None
    """Clips: the frame the angle was read at (the heel raise's peak, or the push-off nearest the mean)."""
    frames: int | None = None
    """Clips: frames decoded; ``frames_measured`` of them could be measured."""
    frames_measured: int | None = None
    size: int
    mtime_ns: int
    ms: float | None = None
    """Wall-clock milliseconds this photo took in its worker (read, decode, detect, assess, overlay)."""
    cpu_ms: float | None = None
    """CPU milliseconds of the worker process meanwhile (all its threads)."""

    @property
    def key(self) -> tuple[str, int, int]:
        return resume_key(self.path, self.size, self.mtime_ns)

    @property
    def test_and_fit(self) -> str | None:
        """The test judged by and how the photo's posture fits it ("passive_nwb (mismatch)"): what the
        run's summary and its report count; None without a posture."""
        return f"{self.judged_by} ({self.posture_fit})" if self.posture_fit else None

    # -- building ------------------------------------------------------------------------

    @classmethod
    def from_result(cls, path: str, size: int, mtime_ns: int, result: MeasurementResult,
                    ms: float | None = None, cpu_ms: float | None = None) -> Row:
        m, v, p = result.measurement, result.verdict, result.posture
        landmarks = Landmarks(**{
            name: Point(x=round(p.x, 2), y=round(p.y, 2),
                        confidence=None if p.confidence is None else round(p.confidence, 3),
                        sigma_px=None if p.sigma_px is None else round(p.sigma_px, 2))
            for name, p in result.landmarks.present().items()
        })
        return cls(
            path=path, status=result.status, protocol=result.options.protocol,
            angle_deg=None if m is None else round(m.angle_deg, 2),
            uncertainty_deg=None if m is None or m.uncertainty_deg is None else round(m.uncertainty_deg, 2),
            angle_2d_deg=None if m is None else round(m.angle_2d_deg, 2),
            view_correction_deg=None if m is None or m.view_correction is None else round(m.view_correction.degrees, 2),
            phalanx_point=None if m is None else m.phalanx_point,
            verdict=None if v is None else v.label,
            grade=None if v is None or v.grade is None else v.grade.grade,
            normal_min_deg=None if v is None else v.normal_min_deg,
            judged_by=v.protocol if v is not None else None if p is None else p.protocol,
            test_probability=None if p is None else p.tests[p.protocol], posture_fit=None if p is None else p.fit,
            suggested_protocol=None if p is None else p.suggested_protocol,
            standing=None if p is None else p.standing, heel_raised=None if p is None else p.heel_raised,
            **{f"toe_{state}": None if p is None else round(p.toe.get(state, 0.0), 3)
               for state in TOE_STATES},
            detector=result.detector, reasons=tuple(_one_line(r) for r in result.reasons), landmarks=landmarks,
            width=None if result.image is None else result.image.width,
            height=None if result.image is None else result.image.height,
            format=None if result.image is None else result.image.format,
            size=size, mtime_ns=mtime_ns, ms=None if ms is None else round(ms, 2),
            cpu_ms=None if cpu_ms is None else round(cpu_ms, 2),
        )

    @classmethod
    def from_video(cls, path: str, size: int, mtime_ns: int, result: VideoResult,
                   ms: float | None = None, cpu_ms: float | None = None) -> Row:
        """A clip's row: the movement's angle (peak, or mean push-off) with the key frame's landmarks."""
        movement = result.movement
        key = None if movement is None else result.frames[movement.key_frame]
        one = MeasurementResult(status=result.status, reasons=result.reasons, detector=result.detector,
                                landmarks=key.landmarks if key is not None and key.landmarks else Landmarks(),
                                measurement=None if movement is None else result.measurement.model_copy(
                                    update={"angle_deg": movement.angle_deg}),
                                verdict=result.verdict, options=result.options)
        video = result.video
        return cls.from_result(path, size, mtime_ns, one, ms, cpu_ms).model_copy(update={
            "width": video.width, "height": video.height, "format": " ".join(filter(None, (video.container, video.codec))),
            "key_frame": None if movement is None else movement.key_frame, "frames": len(result.frames),
            "frames_measured": sum(f.status == "ok" for f in result.frames)})

    @classmethod
    def failed(cls, path: str, size: int, mtime_ns: int, protocol: str, error: str, ms: float | None = None,
               cpu_ms: float | None = None) -> Row:
        return cls(path=path, status="error", protocol=protocol, error=_one_line(error), size=size,
                   mtime_ns=mtime_ns, ms=None if ms is None else round(ms, 2),
                   cpu_ms=None if cpu_ms is None else round(cpu_ms, 2))

    def to_result(self) -> MeasurementResult:
        """A MeasurementResult carrying what the row knows: enough to draw its overlay again (the posture's
        words come from the packaged rules' titles)."""
        measurement = verdict = posture = None
        options = MeasureOptions(protocol=self.protocol)  # type: ignore[arg-type]
        if self.standing is not None and self.heel_raised is not None:
            read = Posture(standing=self.standing, heel_raised=self.heel_raised,
                           toe={"raised": self.toe_raised or 0.0, "resting": self.toe_resting or 0.0})
            posture = assess(read, options.protocol, load_rules())
        if self.status == "ok" and self.angle_deg is not None and self.verdict is not None:
            measurement = Measurement(angle_deg=self.angle_deg, uncertainty_deg=self.uncertainty_deg,
                                      angle_2d_deg=self.angle_2d_deg if self.angle_2d_deg is not None else self.angle_deg,
                                      phalanx_point=self.phalanx_point or "hallux_ip")
            grade = None if self.grade is None else Grade(grade=self.grade, description="", basis="angle")
            verdict = Verdict(protocol=self.judged_by or options.protocol, label=self.verdict,  # type: ignore[arg-type]
                              normal_min_deg=self.normal_min_deg or 0.0, grade=grade, summary="")
        return MeasurementResult(status="ok" if measurement else "unmeasurable",
                                 reasons=self.reasons or ((self.error,) if self.error else ()),
                                 detector=self.detector or "", landmarks=self.landmarks,
                                 measurement=measurement, verdict=verdict, posture=posture, options=options)

    # -- CSV -----------------------------------------------------------------------------

    def csv_record(self) -> list[str]:
        flat: dict[str, object] = self.model_dump(exclude={"landmarks", "reasons"})
        flat["reasons"] = REASON_SEP.join(self.reasons)
        for name in LANDMARK_NAMES:
            p = getattr(self.landmarks, name)
            flat[f"{name}_x"] = None if p is None else p.x
            flat[f"{name}_y"] = None if p is None else p.y
            flat[f"{name}_conf"] = None if p is None else p.confidence
            flat[f"{name}_sigma"] = None if p is None else p.sigma_px
        cells = ["" if flat[c] is None else str(flat[c]) for c in CSV_COLUMNS]
        return [defuse(cell) if column in _TEXT_COLUMNS else cell for column, cell in zip(CSV_COLUMNS, cells)]

    @classmethod
    def from_csv(cls, record: dict[str, str]) -> Row:
        values: dict[str, object] = {}
        for column in CSV_COLUMNS:
            if column in LANDMARK_COLUMNS:
                continue
            text = record.get(column, "")
            if column in _TEXT_COLUMNS:
                text = restore(text)
            if column == "reasons":
                values[column] = tuple(text.split(REASON_SEP)) if text else ()
            elif text == "":
                values[column] = None
            elif column in _INT:
                values[column] = int(text)
            elif column in _FLOAT:
                values[column] = float(text)
            else:
                values[column] = text
        points = {}
        for name in LANDMARK_NAMES:
            x, y, conf, sigma = (record.get(f"{name}_{part}", "") for part in ("x", "y", "conf", "sigma"))
            if x and y:
                points[name] = Point(x=float(x), y=float(y), confidence=float(conf) if conf else None,
                                     sigma_px=float(sigma) if sigma else None)
        values["landmarks"] = Landmarks(**points)
        return cls(**{k: v for k, v in values.items() if v is not None or k in ("error",)})

    # -- JSONL ---------------------------------------------------------------------------

    def json_line(self) -> str:
        data = self.model_dump(mode="json")
        data["landmarks"] = self.landmarks.model_dump(mode="json", exclude_none=True)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        # A file name that is not UTF-8 holds lone surrogates (os.fsdecode): escaped, the line stays UTF-8.
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

    @classmethod
    def from_json(cls, line: str) -> Row:
        return cls.model_validate(json.loads(line))  # pydantic's own JSON parser refuses lone surrogates
