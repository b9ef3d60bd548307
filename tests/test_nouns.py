"""The noun world: rendered scenes, captions, training labels, vocabulary and the detector."""

import numpy as np
import pytest

from infsplign_scene.errors import InfsplignError
from infsplign_scene.lab.nouns.glyphs import find_font, noun_classes, plural

try:
    find_font()
except InfsplignError:
    pytest.skip("the Noto Color Emoji font is absent (Debian: fonts-noto-color-emoji)", allow_module_level=True)

from infsplign_scene.lab.nouns.scenes import caption, sample_scene  # noqa: E402


def test_scenes_are_seeded_and_captions_name_exactly_what_is_drawn():
    first = [sample_scene(np.random.default_rng(4)) for _ in range(1)][0]
    again = [sample_scene(np.random.default_rng(4)) for _ in range(1)][0]
    assert np.array_equal(first[0], again[0]) and caption(first[3]) == caption(again[3])
    rng = np.random.default_rng(0)
    for _ in range(200):
        image, index, objects, mentions = sample_scene(rng)
        assert sorted(k for m in mentions for k in m.objects) == list(range(len(objects)))
        for mention in mentions:
            noun = " ".join(mention.words[-mention.noun_words :])
            named = {objects[k].noun.index for k in mention.objects}
            assert len(named) == 1 and mention.noun.index in named
            forms = {form for name in mention.noun.names for form in (name, plural(name))}
            assert noun in forms
            assert (mention.words[0] in ("two", "three", "four")) == (len(mention.objects) > 1)
        for k, obj in enumerate(objects):  # each object's mask lies in its box, and boxes never touch
            ys, xs = np.nonzero(index == k)
            assert xs.min() >= obj.box[0] and xs.max() < obj.box[2] and ys.min() >= obj.box[1] and ys.max() < obj.box[3]
        for a in objects:
            for b in objects:
                if a is not b:
                    assert a.box[2] < b.box[0] or b.box[2] < a.box[0] or a.box[3] < b.box[1] or b.box[3] < a.box[1]


def test_training_labels_point_each_noun_word_at_its_mention_and_class():
    from infsplign_scene.lab.nouns.train import WORLD, scene_batch

    tokenizer = WORLD.build_tokenizer()
    batch = scene_batch(np.random.default_rng(2), 32, tokenizer, dropout=0.0)
    vocabulary = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    classes = noun_classes()
    assert (batch.ids != tokenizer.unk_token_id).all()  # every caption word is known
    for b in range(32):
        for position in np.nonzero(batch.token_object[b].numpy() >= 0)[0]:
            word = vocabulary[int(batch.ids[b, position])]
            noun = classes[int(batch.token_attribute[b, position])]
            assert any(word in form.split() for name in noun.names for form in (name, plural(name)))
            assert batch.masks[b, int(batch.token_object[b, position])].sum() > 0


def test_every_glyph_renders():
    from infsplign_scene.lab.nouns.glyphs import glyph

    for noun in noun_classes():
        assert glyph(noun.emoji)[..., 3].max() > 0.5, noun.name


def test_the_detector_finds_class_and_box_on_held_out_rendered_scenes():
    from infsplign_scene.lab.nouns.detector import WEIGHTS, evaluate

    if not WEIGHTS.exists():
        pytest.skip("the noun detector's weights are not in this checkout")
    result = evaluate(scenes=100, seed=11)
    assert result["class_and_box_accuracy"] >= 0.98, result


def test_the_forced_choice_detector_gives_each_named_object_the_blob_most_like_it():
    from infsplign_scene import SceneGraph
    from infsplign_scene.lab.nouns.detector import NounDetector
    from infsplign_scene.relations import iou

    rng = np.random.default_rng(5)
    while True:  # a scene of two distinct classes
        image, _, objects, _ = sample_scene(rng, (0.0, 1.0, 0.0, 0.0))
        if objects[0].noun != objects[1].noun:
            break
    names = [o.noun.name for o in objects]
    drawn = SceneGraph(objects=[{"id": f"o{k}", "name": n} for k, n in enumerate(names)])
    located = NounDetector(forced=True).locate(image, drawn)
    for k, obj in enumerate(objects):
        assert iou(located[f"o{k}"].box, tuple(c / 64 for c in obj.box)) >= 0.5, names[k]
    others = [c.name for c in noun_classes() if c.name not in names][:3]
    asked = SceneGraph(objects=[{"id": f"o{k}", "name": n} for k, n in enumerate(others)])
    forced = NounDetector(forced=True).locate(image, asked)  # three named, two blobs: two get one
    assert sorted(place is None for place in forced.values()) == [False, False, True]
    assert not any(NounDetector().locate(image, asked).values())  # recognised outright: none of them
