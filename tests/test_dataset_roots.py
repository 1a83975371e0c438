"""Every ingest source names the one folder it reads (`root`), which dvc.yaml makes a dep of its ingest stage:
a changed dataset reruns exactly that source's ingest and what depends on it. Paths stay inside the root,
directory symlinks under it (which DVC does not follow) are refused, and the ingest output carries a digest of
the image files (the tables only point at them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from pydantic import ValidationError

from talking_points.pipeline.data.adapters import ov_parts, partimagenet, pascal_part_mat
from talking_points.pipeline.data.adapters.common import OUTSIDE_ROOT, segmentation_mask
from talking_points.pipeline.data.errors import BadInput, OnError
from talking_points.pipeline.data.ingest import ingest_source
from talking_points.pipeline.data.ingest_config import IngestConfig
from talking_points.pipeline.data.partworld import PARTWORLD_ROOT, PartWorldConfig

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- configs


def test_path_keys_are_relative_to_root_and_stay_inside_it(tmp_path: Path) -> None:
    cfg = pascal_part_mat.PascalPartMatConfig(root="datasets/pascal_part")
    assert cfg.annotation_dir == Path("datasets/pascal_part/Annotations_Part")  # the defaults: the release's names
    assert cfg.image_dir == Path("datasets/pascal_part/JPEGImages")
    inside = partimagenet.PartImageNetConfig(root=tmp_path, annotations=tmp_path / "a.json", images="img")
    assert inside.annotation_json == tmp_path / "a.json"  # an absolute path inside root is fine
    for bad in ("../VOC2010/JPEGImages", "/etc", "x/../../y"):
        with pytest.raises(ValidationError, match="must lie inside root"):
            pascal_part_mat.PascalPartMatConfig(root="datasets/pascal_part", images=bad)
    with pytest.raises(ValidationError, match="instances .* must lie inside root"):
        ov_parts.OvPartsConfig(variant="ade20k_part_234", root=tmp_path, instances="../x.json")
    with pytest.raises(ValidationError, match="root"):
        pascal_part_mat.PascalPartMatConfig(annotations="a", images="b")  # root is required


def test_partworld_root_is_its_generator_and_every_source_writes_root_out() -> None:
    assert PartWorldConfig(n_images=2).root == PARTWORLD_ROOT
    assert (REPO / PARTWORLD_ROOT / "__init__.py").is_file()  # the folder dvc.yaml hashes for it
    with pytest.raises(ValidationError, match="PartWorld source reads no dataset folder"):
        PartWorldConfig(root="datasets/partworld")
    # dvc.yaml reads `${item.root}` from the params file, so the params must spell it out (no default there)
    with pytest.raises(ValidationError, match=r"'pw' needs a 'root'.*ingest@pw.*talking_points/pipeline"):
        IngestConfig.model_validate({"sources": {"pw": {"adapter": "partworld"}}})
    with pytest.raises(ValidationError, match=r"'pp' needs a 'root'"):
        IngestConfig.model_validate({"sources": {"pp": {"adapter": "pascal_part_mat", "annotations": "a"}}})


@pytest.mark.parametrize("profile", ["params.yaml", "profiles/default.yaml", "profiles/smoke.yaml",
                                     "profiles/paper.yaml"])
def test_every_profile_source_has_a_root(profile: str) -> None:
    sources = yaml.safe_load((REPO / profile).read_text())["ingest"]["sources"]
    cfg = IngestConfig.model_validate({"sources": sources})
    for name, source in sources.items():
        assert "root" in source, f"{profile}: ingest.sources.{name} needs 'root' (dvc.yaml's ingest dep)"
        assert cfg.sources[name].root == Path(source["root"])


def test_dvc_yaml_makes_the_root_a_dep_of_ingest() -> None:
    ingest = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["ingest"]
    assert ingest["foreach"] == "${ingest.sources}" and "${item.root}" in ingest["do"]["deps"]


# --------------------------------------------------------------------------- folder symlinks under a root


def test_a_folder_symlink_under_root_is_refused_but_a_symlinked_root_is_fine(real_fixtures: Path,
                                                                            tmp_path: Path) -> None:
    # DVC does not follow directory symlinks inside a dep folder (it follows a symlinked dep itself): files
    # behind such a link would change without rerunning the ingest, so the adapter refuses it
    real = tmp_path / "real"
    (real / "Annotations_Part").mkdir(parents=True)
    (real / "JPEGImages").mkdir()
    for suffix, folder in ((".mat", "Annotations_Part"), (".jpg", "JPEGImages")):
        shutil.copyfile(real_fixtures / "pascal_part_mat" / f"2008_006462{suffix}",
                        real / folder / f"2008_006462{suffix}")
    linked_root = tmp_path / "linked_root"
    linked_root.symlink_to(real, target_is_directory=True)
    assert pascal_part_mat.list_samples(pascal_part_mat.PascalPartMatConfig(root=linked_root)) == ["2008_006462"]

    root = tmp_path / "root"
    (root / "Annotations_Part").mkdir(parents=True)
    (root / "JPEGImages").symlink_to(real / "JPEGImages", target_is_directory=True)
    with pytest.raises(BadInput, match="symlink to a folder") as err:
        pascal_part_mat.list_samples(pascal_part_mat.PascalPartMatConfig(root=root))
    assert err.value.reason == OUTSIDE_ROOT and "'images'" in str(err.value)


# --------------------------------------------------------------------------- PartImageNet's degenerate polygons

BOX = [2.0, 2.0, 20.0, 2.0, 20.0, 16.0, 2.0, 16.0]


def _tiny_pin(root: Path, parts: list[list]) -> partimagenet.PartImageNetConfig:
    """One 32 x 24 image with one annotation row per entry of `parts` (its polygon list)."""
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(root / "images" / "n02085620_1.JPEG", format="JPEG")
    (root / "train.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "n02085620_1.JPEG", "width": 32, "height": 24}],
        "annotations": [{"id": k, "image_id": 1, "category_id": k, "segmentation": segm, "iscrowd": 0}
                        for k, segm in enumerate(parts)],
        "categories": [{"id": 0, "name": "Quadruped Head", "supercategory": "Quadruped"},
                       {"id": 1, "name": "Quadruped Tail", "supercategory": "Quadruped"}],
    }))
    return partimagenet.PartImageNetConfig(root=root, annotations="train.json", images="images")


def test_polygons_of_one_or_two_points_are_dropped_not_the_image(tmp_path: Path) -> None:
    # PartImageNet's json has polygons of 2 or 4 numbers (facebookresearch/VLPart's
    # tools/partimagenet_format_json.py pads them); they enclose nothing and used to make the image bad
    assert not segmentation_mask([[3, 4]], 8, 8, "x").any()
    assert not segmentation_mask([[1, 1, 5, 5]], 8, 8, "x").any()
    with_dot = segmentation_mask([[1, 1], BOX], 24, 32, "x")
    assert (with_dot == segmentation_mask([BOX], 24, 32, "x")).all()
    for malformed in ([[1, 2, 3]], [[]], []):
        with pytest.raises(BadInput):
            segmentation_mask(malformed, 8, 8, "x")
    cfg = _tiny_pin(tmp_path / "pin", [[BOX, [5, 5]], [[7, 7, 9, 9]]])
    res = ingest_source("pin", cfg, image_dir=None, on_error=OnError.strict)
    assert len(res.images) == 1 and list(res.parts["part"]) == ["head"]  # the all-degenerate tail is left out


# --------------------------------------------------------------------------- the image files' digest


def test_the_ingest_digest_follows_the_image_bytes(tmp_path: Path) -> None:
    cfg = _tiny_pin(tmp_path / "pin", [[BOX]])
    first = ingest_source("pin", cfg, image_dir=None)
    again = ingest_source("pin", cfg, image_dir=None)
    assert len(first.image_digest) == 64 and again.image_digest == first.image_digest
    image = tmp_path / "pin/images/n02085620_1.JPEG"
    Image.fromarray(np.full((24, 32, 3), 200, np.uint8)).save(image, format="JPEG")  # same size, new pixels
    edited = ingest_source("pin", partimagenet.PartImageNetConfig(root=tmp_path / "pin", annotations="train.json",
                                                                  images="images"), image_dir=None)
    assert edited.images.equals(first.images)  # the tables cannot tell ...
    assert edited.image_digest != first.image_digest  # ... the digest in report.json does


# --------------------------------------------------------------------------- DVC: a changed dataset folder


@pytest.fixture(scope="module")
def pascal_repo(tmp_path_factory, real_fixtures: Path) -> Path:
    """A scratch clone on the smoke profile (two PartWorld sources) plus a Pascal-Part source whose root is a
    copy of the real samples, with `dvc repro split` done."""
    from test_dvc_pipeline import copy_repo, run

    repo = copy_repo(tmp_path_factory.mktemp("roots"))
    run(["tp", "profile", "smoke"], repo)
    root = repo / "datasets/pascal_part"
    for suffix, folder in ((".mat", "Annotations_Part"), (".jpg", "JPEGImages")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for f in sorted((real_fixtures / "pascal_part_mat").glob(f"*{suffix}")):
            shutil.copyfile(f, root / folder / f.name)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ingest"]["sources"]["pascal"] = {"adapter": "pascal_part_mat", "root": "datasets/pascal_part"}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro", "split"], repo)
    return repo


@pytest.mark.slow
def test_a_changed_dataset_folder_reruns_its_ingest_and_downstream_only(pascal_repo: Path) -> None:
    from test_dvc_pipeline import downstream, ran, run, would_run

    repo = pascal_repo
    assert would_run(repo) == set()
    after = downstream(repo, "ingest@pascal") & {"ingest@pascal", "ingest@pw_a", "ingest@pw_b", "mine", "synthesize",
                                                  "split"}
    assert after == {"ingest@pascal", "mine", "synthesize", "split"}  # another source's ingest is not downstream
    mat = repo / "datasets/pascal_part/Annotations_Part/2010_005511.mat"
    aside = repo / "2010_005511.mat"
    mat.rename(aside)  # one annotation file leaves the source folder
    try:
        assert would_run(repo) == {"ingest@pascal"}  # the first stale stage; the rest depend on its output
        status = run(["dvc", "status", "ingest@pascal", "ingest@pw_a", "ingest@pw_b"], repo).stdout
        assert "ingest@pascal" in status and "datasets/pascal_part" in status and "pw_" not in status
        assert ran(repo) == {"ingest@pascal", "mine", "synthesize", "split"}  # pw ingests untouched
        assert json.loads((repo / "data/ingested/pascal/report.json").read_text())["images"] == 7
    finally:
        aside.rename(mat)
        run(["dvc", "repro", "split"], repo)  # back to the first outputs (DVC's run cache)
    assert would_run(repo) == set()

    # an image re-encoded in place (same size, other pixels): the tables only hold its path, but the image
    # files' digest in report.json changes, so the stages that read pixels rerun too
    jpg = repo / "datasets/pascal_part/JPEGImages/2010_005511.jpg"
    original = jpg.read_bytes()
    with Image.open(jpg) as im:
        im.convert("RGB").rotate(180).save(jpg, format="JPEG", quality=70)
    try:
        assert would_run(repo) == {"ingest@pascal"}
        done = ran(repo)
        assert {"ingest@pascal", "mine"} <= done and not done & {"ingest@pw_a", "ingest@pw_b"}
    finally:
        jpg.write_bytes(original)
        run(["dvc", "repro", "split"], repo)
    assert would_run(repo) == set()


def test_the_documented_examples_are_valid_params() -> None:
    text = (REPO / "docs/adapters.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    assert len(blocks) == 4  # one per file-based adapter (ov_parts shows both variants in one)
    for block in blocks:
        sources = yaml.safe_load(block)["ingest"]["sources"]
        IngestConfig.model_validate({"sources": sources})  # every example writes root out, paths inside it
