"""Color parity of rendered layers (bgtool.parity), the rule `bgtool drift` and the render tests share."""

from __future__ import annotations

from bgtool.render.parity import layer_differences, normalize_layer_text


def layer(color: str, extra: str = "", keys: str = '"app_version": "1", "desired": 2') -> dict[str, str]:
    other = "green" if color == "blue" else "blue"
    return {
        "main.tf": f'module "color" {{\n  color = "{color}"\n  # not {other}\n}}\n{extra}',
        "backend.tf": f'key = "bgtool/prod/{color}.tfstate"\n',
        "terraform.tfvars.json": "{" + keys + "}",
    }


def test_colors_differing_only_in_color_and_values_are_equal() -> None:
    green = layer("green", keys='"app_version": "2", "desired": 0')
    assert layer_differences(layer("blue"), green) == {}


def test_a_hand_edit_is_found_with_its_diff() -> None:
    found = layer_differences(layer("blue"), layer("green", extra="count = 2\n"))
    assert list(found) == ["main.tf"] and "+count = 2" in found["main.tf"]


def test_different_variables_and_missing_files_are_found() -> None:
    green = layer("green", keys='"app_version": "2"')
    del green["backend.tf"]
    found = layer_differences(layer("blue"), green)
    assert set(found) == {"backend.tf", "terraform.tfvars.json"}


def test_normalize_keeps_words_containing_a_color() -> None:
    assert normalize_layer_text("blue bluebird green\n# green only\n", "blue") == "<color> bluebird <other>"


def test_the_real_templates_render_blue_and_green_in_parity(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bgtool.config.schema import load_environment
    from bgtool.render.templates import render_layer
    from tests.helpers import copy_project

    root = copy_project(tmp_path)
    for env in ("local", "prod"):
        if (root / "environments" / f"{env}.yaml").exists():
            loaded = load_environment(root, env)
            blue, green = render_layer(root, loaded, "blue"), render_layer(root, loaded, "green")
            assert layer_differences(blue, green) == {}, env
