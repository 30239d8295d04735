"""Association files: members resolved relative to the file; clear errors."""
import json

import pytest

from runner.association import Association
from runner.errors import InputError
from runner.execute import expand_inputs
from runner.recipe import Recipe


def write_asn(tmp_path, members, name="asn.json", asn_type="image3"):
    doc = {"asn_type": asn_type, "asn_rule": "candidate_Asn_Lv3Image", "asn_id": "o001", "program": "01234",
           "target": "t001", "products": [{"name": "jw01234-o001_t001_nircam_clear-f200w", "members": members}]}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_members_relative_to_file(tmp_path):
    sub = tmp_path / "data"
    sub.mkdir()
    for n in ("a_cal.fits", "b_cal.fits"):
        (sub / n).write_bytes(b"")
    asn = Association.load(write_asn(sub, [{"expname": "a_cal.fits", "exptype": "science"},
                                            {"expname": "b_cal.fits", "exptype": "background"}]))
    prod = asn.products[0]
    assert [m.path for m in prod.members] == [sub / "a_cal.fits", sub / "b_cal.fits"]
    assert [m.path.name for m in prod.of_type("background")] == ["b_cal.fits"]


def test_stage2_fans_out_stage3_groups(tmp_path):
    for n in ("a_rate.fits", "b_rate.fits"):
        (tmp_path / n).write_bytes(b"")
    path = write_asn(tmp_path, [{"expname": "a_rate.fits", "exptype": "science"},
                                {"expname": "b_rate.fits", "exptype": "science"}])
    assert len(expand_inputs(Recipe.load("calwebb_image2"), [path])) == 2
    assert len(expand_inputs(Recipe.load("calwebb_image3"), [path])) == 1


def test_missing_member_and_bad_json(tmp_path):
    path = write_asn(tmp_path, [{"expname": "gone_cal.fits", "exptype": "science"}])
    with pytest.raises(InputError, match="asn.json: member gone_cal.fits .* not found"):
        Association.load(path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json: not a valid association"):
        Association.load(bad)
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(InputError, match="empty.json: association has no 'products'"):
        Association.load(empty)
