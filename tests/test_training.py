"""The training recipes run end to end on tiny data: every step of both stages (one epoch, a few
renders), the ONNX export, the card, and a detection through the runtime that ships."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import REPO

from toeangle.decode import decode_image
from toeangle.detectors.contract import INPUT_NAME, STAGES
from toeangle.detectors.keypoint import KeypointDetector

sys.path.insert(0, str(REPO / "training"))

from card import write_card  # noqa: E402
from dataset import render_set  # noqa: E402
from run_recipe import SETS, STAGE_RECIPES, read_toml, run_recipe  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))

from realset import SHARED_PHOTOS, load_annotations  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Eight renders (seeds 0-7), rendered once for the tests that train on them."""
    path = tmp_path_factory.mktemp("renders") / "tiny.npz"
    render_set(range(0, 8), path, workers=1)
    return path


def test_the_recipes_train_export_and_load_through_the_runtime(tmp_path, tiny):
    data, models = tmp_path / "data", tmp_path / "models"
    render_set(range(900_000, 900_006), data / "val.npz", workers=1)
    for name in read_toml(SETS):  # every set the recipes name is the same few renders
        if name != "val":
            (data / f"{name}.npz").symlink_to(tiny)
    for path in STAGE_RECIPES:
        recipe = read_toml(path)
        for step in recipe["steps"]:  # one set, one epoch, one batch each
            step["data"] = step["data"][:1]
        record = run_recipe(recipe, data, models, overrides={"epochs": 1, "batch": 4})
        assert record["train_samples"] > 0 and np.isfinite(record["val"]["median_px"])
    card = write_card(models, sigma_scale=1.0)

    detector = KeypointDetector(models)  # refuses files that do not match the card's sha256 or the contract
    detection = detector.detect(decode_image((REPO / "samples" / "normal_right_closeup.jpg").read_bytes()))
    assert detection.detector == f"keypoint:{card['version']}"
    assert set(detection.landmarks.model_dump()) >= set(STAGES[1].keypoints)

    for stage, contract in STAGES.items():
        session = detector.model.sessions[f"stage{stage}"]
        size = contract.input_size
        inputs = np.random.default_rng(stage).uniform(0, 255, (3, 3, size, size)).astype(np.float32)
        for output, value in zip(contract.outputs, session.run(None, {INPUT_NAME: inputs})):
            low, high = output.bounds
            assert value.shape[0] == 3 and np.isfinite(value).all(), output.name
            assert (low is None or value.min() >= low) and (high is None or value.max() <= high), output.name


def test_realism_renders_are_seeded_photo_like_and_keep_the_truth_on_the_image(tmp_path):
    import dataset
    from render import Camera, Lights, Renderer, Scene
    from synth import SceneSampler, ellipsoid, project

    dataset._init(dict(wide_view_share=0.12, top_down_share=0.0, lateral_share=0.15, realism=1.0), 128, 45.0)
    seeds = range(20, 26)
    first = [dataset.make_sample(seed) for seed in seeds]
    again = [dataset.make_sample(seed) for seed in seeds]
    for a, b in zip(first, again):  # the same seed gives the same bytes
        assert all(np.array_equal(a[k], b[k]) for k in a)
    render_set(seeds[:2], tmp_path / "realism.npz", workers=1, realism=1.0)  # the set option, in a worker process
    rendered = np.load(tmp_path / "realism.npz")
    assert all(np.array_equal(rendered["stage1"][i], first[i]["stage1"]) for i in range(2))
    dataset._init(dict(wide_view_share=0.12, top_down_share=0.0, lateral_share=0.15), 128, 45.0)
    plain = [dataset.make_sample(seed) for seed in seeds]
    assert all(not np.array_equal(a["stage1"], p["stage1"]) for a, p in zip(first, plain))
    for a, p in zip(first, plain):  # the same foot and camera: points move only by the lens
        assert a["angle"] == p["angle"] and a["presence"] == p["presence"]
        assert np.abs(a["xy1"] - p["xy1"]).max() < 0.12 * dataset.STAGE1_RENDER

    # a strongly distorting lens: small balls at the truth's 3D points appear where project() puts them,
    # in the whole photo and in a crop rendered through a similarity
    sampler, renderer = SceneSampler(), Renderer()
    scene, truth = sampler.sample(7, realism=1.0)
    camera = scene.camera
    camera.distortion = (0.35, 0.05)
    lights = Lights(np.array([0, 0, 1.0]), np.zeros(3), np.array([0, 0, 1.0]), np.zeros(3), np.ones(3))
    size = (240, 180)
    pinhole = Camera(camera.eye, camera.target, camera.up, camera.fov_y_deg, camera.near, camera.far)
    checked = moved = 0
    for name, point in truth.landmarks3d.items():
        ball = ellipsoid(point, [0.004] * 3, np.eye(3), np.array([1.0, 1.0, 1.0]))
        shot = Scene([ball], [], lights, camera, (0.0, 0.0, 0.0))
        where = project(shot, truth, size)[name]
        if not (10 < where[0] < size[0] - 10 and 10 < where[1] < size[1] - 10):
            continue
        image = renderer.render(shot, size)[..., 0].astype(float)
        ys, xs = np.nonzero(image > 128)
        assert np.hypot(xs.mean() - where[0], ys.mean() - where[1]) < 0.6, name
        moved += np.hypot(*(project(Scene([], [], lights, pinhole), truth, size)[name] - where)) > 2
        checked += 1
        for mirror in (1, -1):  # stage 2's crops mirror one side's feet
            similarity = np.array([[1.6 * mirror, 0.4], [-0.4 * mirror, 1.6]])
            similarity = np.c_[similarity, 64 - similarity @ where]
            crop = renderer.render(shot, (128, 128), similarity_px=similarity, src_size=size)[..., 0].astype(float)
            ys, xs = np.nonzero(crop > 128)
            assert np.hypot(xs.mean() - 64, ys.mean() - 64) < 0.8, name
    assert checked >= 3 and moved >= 2, (checked, moved)


def test_only_licensed_photos_with_all_five_points_are_trained_on():
    from realset import trainable
    points = {n: [1.0, 2.0] for n in ("heel", "first_metatarsal", "first_mtp", "hallux_ip", "hallux_tip")}
    entries = [{"id": "mit", "licence": "MIT (LICENSE)", "points": points},
               {"id": "unlicensed", "licence": "none stated: measure only", "points": points},
               {"id": "no toe", "licence": "MIT", "points": {**points, "hallux_ip": None}},
               {"id": "labels only", "licence": "MIT", "points": None}]
    assert [e["id"] for e in trainable(entries)] == ["mit"]


@pytest.mark.skipif(not SHARED_PHOTOS.exists(), reason="../shared/real-photos not found")
def test_real_crops_carry_the_annotated_points_and_load_beside_renders(tmp_path):
    """Each licensed photo and its mirror image, cut as render crops are: the metatarsal and the joint land where
    the crop puts them (within the jitter), the plantar side down, and train.load reads the set with a rendered one."""
    from real_crops import build_real_set
    from realset import trainable
    from train import load

    from toeangle.detectors.crops import CROP_CENTRE, CROP_SIDE_METATARSALS
    build_real_set(tmp_path / "real.npz", crops_per_photo=3, seed=1)
    real = np.load(tmp_path / "real.npz")
    photos = len(trainable(load_annotations()))
    assert photos >= 2 and len(real["stage2"]) == 2 * 3 * photos
    size = STAGES[2].input_size
    metatarsal, joint = real["xy2"][:, 0], real["xy2"][:, 1]
    axis = joint - metatarsal
    length = np.hypot(*axis.T)
    assert np.allclose(length, size / CROP_SIDE_METATARSALS, rtol=0.5)  # the crop's scale follows the axis
    assert np.abs(np.degrees(np.arctan2(axis[:, 1], axis[:, 0]))).max() < 30  # heel to toe runs left to right
    centre = joint + length[:, None] * np.array(CROP_CENTRE)  # the crop's centre, in crop pixels (plantar is +y)
    assert np.median(np.hypot(*(centre - (size / 2 - 0.5)).T)) < 0.3 * size
    assert np.isnan(real["angle"]).all() and (real["toe_state"] == -1).all() and not real["lateral"].any()
    render_set(range(0, 4), tmp_path / "tiny.npz", workers=1)
    both = load([tmp_path / "tiny.npz", tmp_path / "real.npz"], stage=2)
    assert len(both["image"]) == int(np.load(tmp_path / "tiny.npz")["stage2_ok"].sum()) + len(real["stage2"])


def test_a_frozen_encoder_keeps_its_weights_and_statistics(tmp_path, tiny):
    """frozen = "encoder": the decoder learns, the layers whose features the view heads read do not move."""
    import torch
    from networks import build
    from train import run_step
    before = build("unet_stage2", frozenset({"view"}))
    torch.save(before.state_dict(), tmp_path / "init.pt")
    after = run_step(2, "unet_stage2", [tiny], tiny, tmp_path / "out", epochs=1,
                     batch=4, lr=1e-2, init=tmp_path / "init.pt", heads=frozenset({"view"}), frozen="encoder")
    old, new = before.state_dict(), after.state_dict()
    encoder = [k for k in old if k.startswith(("stem.", "down."))]
    assert encoder and all(torch.equal(old[k], new[k]) for k in encoder)  # BatchNorm running stats too
    assert any(not torch.equal(old[k], new[k]) for k in old if k.startswith("up."))
    assert all(torch.equal(old[k], new[k]) for k in old if k.startswith("view_head."))  # no loss reaches it


def test_a_warm_head_fit_goes_on_from_the_head_and_crops_without_an_angle_teach_only_the_sides(tmp_path, tiny):
    """warm = true: the view head starts from the one it has (at a vanishing rate its outputs stay as they were;
    from scratch they do not), and crops with no 3D angle (a real photo's) leave every output finite."""
    import torch
    from networks import build
    from train import load, run_step, view_inputs
    real = dict(np.load(tiny))
    real.update(angle=np.full_like(real["angle"], np.nan), off_axis=np.full_like(real["off_axis"], np.nan))
    np.savez(tmp_path / "real.npz", **real)
    torch.manual_seed(3)
    before = build("unet_stage2", frozenset({"view"})).eval()
    torch.save(before.state_dict(), tmp_path / "init.pt")
    images = load([tiny], stage=2)["image"]
    features, _ = view_inputs(before, images)
    with torch.no_grad():
        expected = before.view_head(features)

    def fitted(warm: bool, lr: float, sets: list) -> torch.Tensor:
        model = run_step(2, "unet_stage2", sets, tiny, tmp_path / f"out{warm}{lr}", epochs=1, lr=lr, fit="view",
                         warm=warm, init=tmp_path / "init.pt", heads=frozenset({"view"}))
        with torch.no_grad():
            return model.view_head(features)

    assert torch.allclose(fitted(True, 1e-9, [tiny, tmp_path / "real.npz"]), expected, atol=1e-3)
    assert not torch.allclose(fitted(False, 2e-3, [tiny]), expected, atol=1e-3)
    assert torch.isfinite(fitted(True, 1e-2, [tmp_path / "real.npz"])).all()
