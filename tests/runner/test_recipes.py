"""Recipe loading, validation messages, extends, variants and parameter precedence."""
import json
import textwrap

import pytest
from astropy.io import fits

from runner.errors import RecipeError
from runner.recipe import Recipe, parse_set_option, shipped_recipes
from runner.schema import installed_schema_path, schema_text, validate_with_schema
from runner.yamlpos import load_with_positions

SHIPPED = sorted(shipped_recipes())


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_every_pipeline_alias_is_shipped():
    assert set(SHIPPED) >= {"calwebb_detector1", "calwebb_image2", "calwebb_image3", "calwebb_spec2",
                            "calwebb_spec3", "calwebb_tso3", "calwebb_coron3", "calwebb_ami3"}


@pytest.mark.parametrize("alias", SHIPPED)
def test_shipped_recipes_validate(alias):
    recipe = Recipe.load(alias)
    raw, _ = load_with_positions(recipe.path.read_text(), str(recipe.path))
    assert validate_with_schema(raw) == []
    assert recipe.path.read_text().startswith("# yaml-language-server: $schema=../schemas/recipe.schema.json")


def test_committed_schema_matches_models():
    assert installed_schema_path().read_text() == schema_text(), (
        "schemas/recipe.schema.json is stale: run python -c 'from runner.schema import write_schema; write_schema()'")


def test_unavailable_steps_are_reported_not_dropped():
    recipe = Recipe.load("calwebb_spec3")
    report = recipe.validation_report()
    assert any("combine_1d" in line and "unavailable" in line for line in report)
    assert "combine_1d" in recipe.step_sequence(fits.Header())


def test_parameter_typo_names_line_column_and_suggestion(tmp_path):
    path = write(tmp_path, "mine.yaml", """
        extends: calwebb_detector1
        parameters:
          jump:
            rejection_treshold: 5
        """)
    with pytest.raises(RecipeError) as err:
        Recipe.load(path)
    msg = str(err.value)
    assert "unknown parameter 'rejection_treshold' for step jump (line 4, column 5)" in msg
    assert "did you mean 'rejection_threshold'?" in msg
    assert "mine.yaml" in msg


def test_unknown_step_suggests(tmp_path):
    path = write(tmp_path, "r.yaml", """
        pipeline: calwebb_detector1
        steps: [dq_init, jmup]
        """)
    with pytest.raises(RecipeError, match=r"line 2, column 18: unknown step 'jmup'; did you mean 'jump'\?"):
        Recipe.load(path)


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "r.yaml", """
        pipeline: calwebb_detector1
        stpes: [jump]
        """)
    with pytest.raises(RecipeError, match=r"line 2, column 1: unknown key 'stpes'.*did you mean 'steps'"):
        Recipe.load(path)


def test_unknown_key_in_variant(tmp_path):
    path = write(tmp_path, "r.yaml", """
        extends: calwebb_detector1
        variants:
          - name: x
            wen: {INSTRUME: MIRI}
        """)
    with pytest.raises(RecipeError, match=r"line 4, column 5: unknown key 'wen'.*did you mean 'when'"):
        Recipe.load(path)


def test_duplicate_keys_are_errors(tmp_path):
    path = write(tmp_path, "r.yaml", """
        extends: calwebb_detector1
        parameters:
          jump: {rejection_threshold: 5}
          jump: {rejection_threshold: 6}
        """)
    with pytest.raises(RecipeError, match=r"line 4, column 3: duplicate key 'jump' \(first defined at line 3\)"):
        Recipe.load(path)


def test_wrong_type_and_out_of_range(tmp_path):
    path = write(tmp_path, "r.yaml", """
        extends: calwebb_detector1
        parameters:
          jump: {rejection_threshold: lots}
        """)
    with pytest.raises(RecipeError, match=r"line 3, column 10: invalid value 'lots' for jump.rejection_threshold"):
        Recipe.load(path)
    path = write(tmp_path, "r2.yaml", """
        extends: calwebb_detector1
        parameters:
          jump: {rejection_threshold: -1}
        """)
    with pytest.raises(RecipeError, match=r"invalid value -1 for jump.rejection_threshold"):
        Recipe.load(path)


def test_bad_context_pin(tmp_path):
    path = write(tmp_path, "r.yaml", """
        extends: calwebb_detector1
        crds: {context: jwst-edit}
        """)
    with pytest.raises(RecipeError, match=r"line 2.*crds.context"):
        Recipe.load(path)


def test_empty_and_invalid_yaml(tmp_path):
    with pytest.raises(RecipeError, match="empty"):
        Recipe.load(write(tmp_path, "e.yaml", "\n"))
    with pytest.raises(RecipeError, match=r"b.yaml, line \d+, column \d+: invalid YAML"):
        Recipe.load(write(tmp_path, "b.yaml", "pipeline: x\nsteps: [a, b\n"))
    with pytest.raises(RecipeError, match="unknown recipe 'calwebb_detectr1'.*did you mean 'calwebb_detector1'"):
        Recipe.load("calwebb_detectr1")


def test_extends_loop(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(RecipeError, match="loops back"):
        Recipe.load(tmp_path / "a.yaml")


def header(**kw):
    h = fits.Header()
    for k, v in kw.items():
        h[k] = v
    return h


def test_variants_change_order_and_parameters():
    recipe = Recipe.load("calwebb_detector1")
    nir = recipe.step_sequence(header(INSTRUME="NIRCAM", TSOVISIT=False))
    miri = recipe.step_sequence(header(INSTRUME="MIRI", TSOVISIT=False))
    assert nir.index("refpix") < nir.index("linearity") and "emicorr" not in nir
    assert miri.index("refpix") > miri.index("dark_current") and "emicorr" in miri
    assert [v["name"] for v in recipe.matching_variants(header(INSTRUME="MIRI", TSOVISIT=True))] == [
        "miri", "tso", "miri_tso"]


def test_precedence_defaults_crds_recipe_variant_override(tmp_path):
    path = write(tmp_path, "mine.yaml", """
        extends: calwebb_detector1
        parameters:
          jump: {rejection_threshold: 6.0, four_group_rejection_threshold: 7.0}
        variants:
          - name: tso
            parameters:
              jump: {rejection_threshold: 8.0}
        """)
    recipe = Recipe.load(path)
    crds = {"jump": ({"rejection_threshold": 4.5, "three_group_rejection_threshold": 6.5,
                      "flag_4_neighbors": False}, "CRDS pars-jumpstep")}
    plan = {rs.alias: rs for rs in recipe.resolve(header(INSTRUME="NIRCAM", TSOVISIT=False), crds_pars=crds)}
    jump = plan["jump"]
    assert jump.params.rejection_threshold == 6.0 and "mine.yaml:3" in str(jump.sources["rejection_threshold"])
    assert jump.params.three_group_rejection_threshold == 6.5
    assert str(jump.sources["three_group_rejection_threshold"]) == "CRDS pars-jumpstep"
    assert str(jump.sources["minimum_groups"]) == "default"
    tso = {rs.alias: rs for rs in recipe.resolve(header(INSTRUME="NIRCAM", TSOVISIT=True), crds_pars=crds,
                                                  overrides={"jump": {"four_group_rejection_threshold": 9}})}
    assert tso["jump"].params.rejection_threshold == 8.0
    assert "variant 'tso'" in str(tso["jump"].sources["rejection_threshold"])
    assert tso["jump"].params.four_group_rejection_threshold == 9.0
    assert tso["persistence"].params.skip is True
    with pytest.raises(RecipeError, match="unknown parameter 'rejection' for step jump.*did you mean"):
        recipe.resolve(header(INSTRUME="NIRCAM"), overrides={"jump": {"rejection": 1}})


def test_set_option_parsing():
    assert parse_set_option("jump.rejection_threshold=5") == ("jump", "rejection_threshold", 5)
    assert parse_set_option("steps.ramp_fit.suppress_one_group=false") == ("ramp_fit", "suppress_one_group", False)
    with pytest.raises(RecipeError, match="STEP.PARAMETER=VALUE"):
        parse_set_option("rejection_threshold")


def test_schema_rejects_typo_in_known_step():
    errors = validate_with_schema({"pipeline": "x", "steps": ["jump"], "parameters": {"jump": {"rejection_treshold": 1}}})
    assert errors and "rejection_treshold" in errors[0]
    schema = json.loads(installed_schema_path().read_text())
    assert "rejection_threshold" in schema["properties"]["parameters"]["properties"]["jump"]["properties"]
