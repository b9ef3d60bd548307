import numpy as np
import pytest

from infsplign_scene.guidance import GuidanceConfig, ScenePipeline

PROMPT = "a red circle left of a blue square, the red circle above a green triangle"


@pytest.fixture(scope="module")
def result(tiny_pipe):
    config = GuidanceConfig(eta=20.0)
    return ScenePipeline(tiny_pipe, config)(PROMPT, seed=0, num_inference_steps=3, record_maps=True, progress=False)


def test_attention_and_trace_plots_are_written(result, tmp_path):
    figure = result.plot_attention(path=tmp_path / "attention.png")
    assert (tmp_path / "attention.png").stat().st_size > 1000
    assert len(figure.axes) == 3 * 3  # three objects x (two levels + relations)
    result.plot_trace(path=tmp_path / "trace.png")
    assert (tmp_path / "trace.png").stat().st_size > 1000
    assert sorted(result.maps) == [0, 1, 2] and sorted(result.maps[0]) == [4, 8]


def test_trace_plot_shades_the_steps_without_update(tiny_pipe):
    # "near" within 1.5 always holds: with skip_satisfied no step updates the image
    config = GuidanceConfig(eta=20.0, near_margin=1.5, skip_satisfied=True)
    settled = ScenePipeline(tiny_pipe, config)(
        "a red circle near a blue square", seed=0, num_inference_steps=3, progress=False
    )
    gradient_axis = settled.plot_trace().axes[3]
    assert len(gradient_axis.patches) == 3
    moving = ScenePipeline(tiny_pipe, config.model_copy(update={"margin": 1.0}))(
        "a red circle left of a blue square", seed=0, num_inference_steps=3, progress=False
    )
    assert len(moving.plot_trace().axes[3].patches) == 0


def test_plot_attention_explains_missing_maps(tiny_pipe):
    plain = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0))(PROMPT, seed=0, num_inference_steps=1, progress=False)
    with pytest.raises(ValueError, match="record_maps=True"):
        plain.plot_attention()


def test_a_relation_with_a_split_map_is_uncertain_in_the_trace_and_the_result(tiny_pipe, monkeypatch):
    """A map split over two places makes its relations `uncertain`: None in final_satisfied."""
    import torch

    from infsplign_scene.compile import Objective

    def split_everything(self, maps, centroids, variances, weights, second_copy=None):
        return torch.ones_like(self.weight, dtype=torch.bool, device=maps.device) & (self.weight.to(maps.device) > 0)

    plain = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0))(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert all(state in (True, False) for state in plain.final_satisfied()[0])
    monkeypatch.setattr(Objective, "uncertain", split_everything)
    doubted = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0))(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert doubted.trace[0]["uncertain"] == [[True, True]] and doubted.final_satisfied() == [[None, None]]
    assert doubted.trace[0]["satisfied"] == plain.trace[0]["satisfied"]  # the report changes, not the guidance


def test_a_second_copy_makes_relations_uncertain_and_leaves_the_guidance_alone(tiny_pipe, monkeypatch):
    """With `split_resemblance`, the trace keeps each object's `second_copy` evidence; a relation
    whose subject or object reaches the bound is uncertain, and the images do not change."""
    import torch

    from infsplign_scene import attention

    plain = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0))(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert "second_copy" not in plain.trace[0]
    watching = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0, split_resemblance=0.9))
    measured = watching(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert len(measured.trace[0]["second_copy"][0]) == len(measured.objective.object_ids[0])
    assert all(0 <= c <= 1 for c in measured.trace[0]["second_copy"][0])
    assert np.array_equal(np.asarray(measured.images[0]), np.asarray(plain.images[0]))

    def red_circle_twice(maps, features):  # the first object (the red circle) seems drawn twice
        return torch.zeros(maps.shape[:2]).index_fill_(1, torch.tensor([0]), 0.96875)

    monkeypatch.setattr(attention, "second_copies", red_circle_twice)
    doubted = watching(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert measured.objective.object_ids[0][0] == "circle"  # the red circle
    assert doubted.trace[0]["second_copy"] == [[0.96875, 0.0, 0.0]]
    assert doubted.trace[0]["uncertain"] == [[True, True]] and doubted.final_satisfied() == [[None, None]]
    assert doubted.trace[0]["satisfied"] == plain.trace[0]["satisfied"]


def test_the_image_check_of_objects_drawn_twice_changes_the_report_only(tiny_pipe, monkeypatch):
    """With `split_colour`, the last guided step's record keeps each object's `colour_copy` from the
    decoded image; a relation whose subject or object reaches the bound is uncertain; the images
    are those sampled without it, and a latent output skips the check."""
    import torch

    from infsplign_scene import result as result_module

    plain = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0))(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert "colour_copy" not in plain.trace[-1]
    watching = ScenePipeline(tiny_pipe, GuidanceConfig(eta=20.0, split_colour=0.9))
    measured = watching(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert "colour_copy" not in measured.trace[0]  # only the last guided step's record
    assert len(measured.trace[-1]["colour_copy"][0]) == len(measured.objective.object_ids[0])
    assert all(0 <= c <= 1 for c in measured.trace[-1]["colour_copy"][0])
    assert np.array_equal(np.asarray(measured.images[0]), np.asarray(plain.images[0]))
    latent = watching(PROMPT, seed=0, num_inference_steps=2, progress=False, output_type="latent")
    assert "colour_copy" not in latent.trace[-1]

    def blue_square_twice(maps, image):  # the second object (the blue square) seems drawn twice
        return torch.zeros(maps.shape[:2]).index_fill_(1, torch.tensor([1]), 0.9375)

    monkeypatch.setattr(result_module, "colour_copies", blue_square_twice)
    doubted = watching(PROMPT, seed=0, num_inference_steps=2, progress=False)
    assert measured.objective.object_ids[0][1] == "square"
    assert doubted.trace[-1]["colour_copy"] == [[0.0, 0.9375, 0.0]]
    # the first relation (circle left of square) is doubted; the second (circle above triangle) is not
    assert doubted.trace[-1]["uncertain"] == [[True, False]]
    assert doubted.final_satisfied()[0][0] is None
    assert doubted.final_satisfied()[0][1] == plain.final_satisfied()[0][1]
