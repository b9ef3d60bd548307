"""Open-vocabulary detectors (OWL-ViT, OWLv2, Grounding DINO) from local folders of tiny random
models built from config, as transformers' own tests build them: loading, querying, box format."""

import pytest
import torch
from PIL import Image

from infsplign_scene import InfsplignError, parse
from infsplign_scene.lab.detectors import ZeroShotDetector, _query_of

GRAPH = "a red circle to the left of a blue square"
TINY_TEXT = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
TINY_VISION = {**TINY_TEXT, "image_size": 32, "patch_size": 8}


def save_owl(folder, clip_tokenizer, version: str) -> None:
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTProcessor
    from transformers.models.owlvit.image_processing_pil_owlvit import OwlViTImageProcessorPil

    text = {"vocab_size": 49408, "max_position_embeddings": 77, **TINY_TEXT}
    if version == "owlv2":
        from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2Processor
        from transformers.models.owlv2.image_processing_pil_owlv2 import Owlv2ImageProcessorPil

        config = Owlv2Config(text_config=text, vision_config=TINY_VISION, projection_dim=16)
        Owlv2ForObjectDetection(config).save_pretrained(folder)
        processor = Owlv2Processor(Owlv2ImageProcessorPil(size={"height": 32, "width": 32}), clip_tokenizer)
    else:
        config = OwlViTConfig(text_config=text, vision_config=TINY_VISION, projection_dim=16)
        OwlViTForObjectDetection(config).save_pretrained(folder)
        size = {"height": 32, "width": 32}
        processor = OwlViTProcessor(OwlViTImageProcessorPil(size=size, crop_size=size), clip_tokenizer)
    processor.save_pretrained(folder)


def save_grounding_dino(folder) -> None:
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        SwinConfig,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import GroundingDinoImageProcessorPil

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "red", "circle", "blue", "square"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    backbone = SwinConfig(
        window_size=7,
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        image_size=32,
        out_features=["stage2", "stage3", "stage4"],
        out_indices=[2, 3, 4],
    )
    text = BertConfig(vocab_size=len(words), max_position_embeddings=64, **{**TINY_TEXT, "hidden_size": 32})
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=4,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
    )
    GroundingDinoForObjectDetection(config).save_pretrained(folder)
    image_processor = GroundingDinoImageProcessorPil(size={"shortest_edge": 128, "longest_edge": 128})
    GroundingDinoProcessor(image_processor, BertTokenizer(str(folder / "vocab.txt"))).save_pretrained(folder)


@pytest.mark.parametrize("kind", ["owlvit", "owlv2", "grounding-dino"])
def test_each_open_vocabulary_detector_loads_from_a_folder_and_locates_objects(kind, clip_tokenizer, tmp_path):
    torch.manual_seed(0)
    if kind == "grounding-dino":
        save_grounding_dino(tmp_path)
    else:
        save_owl(tmp_path, clip_tokenizer, kind)
    detector = ZeroShotDetector(tmp_path, threshold=0.0, text_threshold=0.0)
    assert detector.kind == kind
    located = detector.locate(Image.new("RGB", (64, 48), "gray"), parse(GRAPH))
    assert set(located) == {"circle", "square"}
    assert any(v is not None for v in located.values())  # threshold 0: random weights still give boxes
    for found in filter(None, located.values()):
        assert len(found.box) == 4 and all(0 <= c <= 1 for c in found.box) and 0 <= found.score <= 1


def test_a_folder_without_a_detector_is_a_clear_error(tmp_path):
    with pytest.raises(InfsplignError, match="cannot load an open-vocabulary detector"):
        ZeroShotDetector(tmp_path)


def test_grounding_dino_labels_map_back_to_the_objects_queried():
    queries = ["red circle", "blue square"]
    assert _query_of("blue square", queries) == 1
    assert _query_of("square", queries) == 1
    assert _query_of("red circle. blue", queries) == 0  # most shared words: two against one
    assert _query_of("dog", queries) is None
