"""All configuration in one object, read from TOEANGLE_* environment variables.

Every field is documented in the README's configuration table.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def _split_csv(cls: type, value: object) -> object:
    """Lists come from the environment as "a,b,c"."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOEANGLE_", frozen=True)

    detector: Literal["auto", "markers", "keypoint"] = Field(
        default="auto",
        description="Landmark source for photos: auto (skin markers if present, else the keypoint model), markers, keypoint",
    )
    models_dir: Path = Field(default=_REPO_MODELS, description="Folder with the shipped ONNX models")
    clinical_file: Path | None = Field(default=None, description="Override for the clinical rules TOML")
    decode_max_side: int = Field(default=2048, ge=256, description="Photos larger than this are decoded reduced (JPEG DCT scaling)")
    max_pixels: int = Field(default=40_000_000, ge=1, description="Refuse images with more pixels than this (decompression bombs)")
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="Largest accepted upload")
    batch_max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1,
                                      description="toeangle batch: larger files get an error row, unread")
    video_max_seconds: float = Field(default=30.0, gt=0, description="Longest clip measured (longer: 413 / an error row)")
    video_max_frames: int = Field(default=1800, ge=1, description="Most frames in a clip (30 s at 60 fps)")
    video_max_decoded_pixels: float = Field(default=1800 * 1920 * 1080, gt=0,
                                            description="Most pixels decoding a clip may take (frames x width x height)")
    video_max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1, description="Largest accepted clip upload")
    video_timeout_s: float = Field(default=180.0, gt=0, description="Per-request time limit for measuring a clip")
    workers: int = Field(default=2, ge=1, description="Inference worker processes of the service")
    queue_size: int = Field(default=8, ge=0, description="Requests allowed to wait for a worker before 503")
    request_timeout_s: float = Field(default=20.0, gt=0, description="Per-request time limit for inference")
    body_timeout_s: float = Field(default=60.0, gt=0, description="Time limit for receiving a request body (408 after)")
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Comma-separated bearer tokens; empty = open")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Comma-separated origins allowed by CORS")
    host: str = Field(default="127.0.0.1", description="Address `toeangle serve` binds")
    port: int = Field(default=8000, description="Port `toeangle serve` binds")
    log_level: str = Field(default="info", description="Log level")

    _lists_from_csv = field_validator("api_keys", "cors_origins", mode="before")(_split_csv)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
