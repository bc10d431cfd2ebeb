#!/usr/bin/env python3
"""Write calibration and held-out evaluation inputs for the real models in build/real.

For every model folder (default: each OUT/*/ holding model.onnx and tokenizer.json, i.e.
minilm, smollm2 and any smollm2-<N>l variants) this writes:

  test_data_set_0/       one short sample beside the model, with output_K.pb from
                         onnxruntime: the bare `sqopt --passes smooth,quantize model.onnx`
                         finds it as calibration data
  calib/test_data_set_0..15/
                         16 calibration samples, batch 1, lengths spread over 16..128 tokens
  calib-npy/sample_000..015/<INPUT_NAME>.npy
                         the same 16 samples in the one-folder-per-sample .npy layout
  eval/test_data_set_0..24/
                         25 held-out samples (texts calibration never sees), each at most 128
                         tokens; MiniLM sets also hold the fp32 onnxruntime outputs
                         (SmolLM2 logits would be ~25 MB a sample, so they are not stored)
  data-manifest.json     texts, token counts, and for causal LMs the fp32 perplexity of eval/

Inputs are written in graph-input order (`input_K.pb` is the K-th graph input). The model
family is told from the graph inputs: `token_type_ids` -> BERT (MiniLM: input_ids,
attention_mask of ones, token_type_ids of zeros); only `input_ids` -> causal LM (SmolLM2,
no BOS, perplexity with tools/realmodels.py).

The corpus below is ordinary English prose written for this project (no downloads).

  python tools/make_eval_data.py [--out build/real] [MODEL_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realmodels  # noqa: E402

MAX_TOKENS = 128
CALIB_LENGTHS = [int(round(x)) for x in np.linspace(16, MAX_TOKENS, 16)]

BESIDE_MODEL_TEXT = (
    "A small bakery on the corner opens at six every morning, and by seven the line of "
    "customers waiting for warm bread already reaches the end of the street."
)

CALIBRATION_TEXTS = [
    "The old lighthouse stood at the edge of the cliff for nearly two centuries. Its keepers "
    "lived in a narrow stone cottage beside the tower, climbing the spiral stairs every evening "
    "to trim the wick and polish the great lens. On stormy nights they stayed awake until dawn, "
    "listening to the wind and watching for ships that drifted too close to the rocks. When the "
    "light was finally automated, the last keeper moved to the village below, but he still "
    "walked up the path each Sunday to look out over the water.",

    "Bread dough needs time more than it needs effort. After mixing flour, water, salt and "
    "yeast, most bakers let the dough rest so the flour can absorb the water fully. A few gentle "
    "folds during the first rise build strength without heavy kneading. The shaped loaf then "
    "proofs until it springs back slowly when pressed with a fingertip. A very hot oven, ideally "
    "with some steam in the first minutes, lets the crust expand before it sets, which gives the "
    "loaf its open crumb and crackling surface.",

    "Jupiter is the largest planet in the solar system, a gas giant more than eleven times as "
    "wide as Earth. Its famous Great Red Spot is a storm that has raged for at least three "
    "hundred years and is wide enough to swallow our planet whole. The planet has dozens of "
    "moons, and four of them are large enough to be seen with a small telescope. Europa, one of "
    "those moons, is covered in ice, and scientists believe an ocean of liquid water may lie "
    "beneath its frozen crust.",

    "When the city council proposed closing the main street to cars on weekends, shop owners "
    "were worried. They expected fewer customers and lower sales. After a three month trial, "
    "however, most of them reported the opposite. Families came to stroll, cafes put tables on "
    "the pavement, and street musicians drew small crowds. The council has now voted to make the "
    "arrangement permanent from April to October, although delivery vans will still be allowed "
    "in the early morning hours before the shops open.",

    "Tomatoes grow best in full sun and warm soil. Gardeners usually start the seeds indoors six "
    "to eight weeks before the last expected frost, then move the young plants outside once the "
    "nights stay mild. Deep, regular watering at the base of the plant helps prevent cracked "
    "fruit, while a layer of straw mulch keeps the soil moist and stops leaves from touching the "
    "ground. Tall varieties need stakes or cages, and pinching out the small shoots between the "
    "stem and branches directs more energy into the fruit.",

    "The history of the printing press is often told as the story of a single inventor, but the "
    "technology drew on many earlier ideas. Paper had travelled west from China over several "
    "centuries, oil based inks were already used by painters, and screw presses had long been "
    "used to squeeze grapes and olives. What changed in the fifteenth century was the "
    "combination of these pieces with movable metal type that could be cast quickly and "
    "precisely. Within fifty years, printed books had spread to hundreds of towns across Europe.",

    "Regular exercise does not have to mean long sessions at a gym. Research suggests that even "
    "brisk walking for twenty or thirty minutes on most days lowers the risk of heart disease, "
    "improves sleep and lifts mood. Strength training twice a week helps preserve muscle and "
    "bone as people age. The most effective routine is usually the one a person actually "
    "enjoys, because habits that feel like punishment rarely last. Starting small and adding a "
    "little more each week is safer than trying to change everything at once.",

    "A budget is simply a plan for where money will go before it arrives. Many people begin by "
    "writing down every expense for a month, which often reveals small recurring costs they had "
    "forgotten about, such as subscriptions or daily coffee. From there, they set limits for "
    "each category and decide how much to save. Financial advisers commonly suggest keeping an "
    "emergency fund that covers three to six months of essential expenses, so that a broken car "
    "or a sudden job loss does not lead straight into debt.",

    "The train left the station a few minutes after midnight, and most of the passengers fell "
    "asleep before it reached the suburbs. In the dining car, an elderly couple played cards "
    "under a dim lamp while a student read a thick paperback with a pencil behind her ear. "
    "Outside, the dark fields slid past, broken now and then by the lights of a farmhouse or a "
    "level crossing. By the time the sky began to turn grey, the mountains had appeared on the "
    "horizon, their peaks still covered with snow.",

    "Software teams often discover that the hardest bugs are not in complicated algorithms but "
    "in the places where two systems meet. A date stored in one time zone and read in another, "
    "a field that is optional in one service but required in the next, or a retry that sends "
    "the same payment twice can all cause failures that are difficult to reproduce. Good "
    "logging, small and well tested interfaces, and clear ownership of each piece of data make "
    "such problems much easier to find and fix.",

    "Honeybees communicate the location of food through a movement known as the waggle dance. A "
    "forager returning to the hive walks in a straight line while shaking her body, then loops "
    "back and repeats the pattern. The angle of the straight run relative to vertical tells the "
    "other bees the direction of the flowers relative to the sun, and the length of the run "
    "indicates the distance. Remarkably, the bees adjust the angle through the day as the sun "
    "moves across the sky.",

    "The orchestra had rehearsed the symphony for six weeks, yet the conductor still stopped "
    "them every few bars during the final practice. She asked the violins to play more softly "
    "in the opening, the brass to hold back until the climax, and the timpani to listen more "
    "closely to the cellos. By the evening of the concert the musicians were tired but "
    "confident. When the last chord faded, the hall was silent for a long moment before the "
    "audience rose to its feet and applauded.",

    "Rain gardens are shallow planted hollows that collect water running off roofs, driveways "
    "and streets. Instead of flowing straight into storm drains, the water soaks slowly into the "
    "ground, where soil and roots filter out much of the pollution it carries. The plants chosen "
    "for a rain garden must tolerate both standing water after a heavy storm and dry spells in "
    "summer. Besides reducing flooding, these gardens attract butterflies and birds and can make "
    "an ordinary yard far more interesting to look at.",

    "The museum's new exhibition brings together maps from five centuries. The earliest are "
    "hand painted charts used by sailors, showing coastlines in careful detail while leaving the "
    "interiors of continents almost blank. Later maps fill those spaces with rivers, mountains "
    "and the borders of kingdoms, some of them imaginary. The final room displays satellite "
    "images beside old surveys of the same valleys, so visitors can see how forests, roads and "
    "towns have changed over the past hundred and fifty years.",

    "Learning a second language as an adult is slower than it is for a child, but adults have "
    "advantages of their own. They can study grammar deliberately, use dictionaries and apps, "
    "and connect new words to ideas they already understand. The biggest obstacle is often fear "
    "of making mistakes in front of others. Teachers recommend speaking early and often, even "
    "imperfectly, because conversation forces the brain to retrieve words quickly, and that "
    "practice is what eventually turns knowledge into fluency.",

    "Volcanoes form where molten rock from deep inside the Earth finds a path to the surface. "
    "Some, like those in Hawaii, release runny lava that flows for miles in glowing rivers. "
    "Others build up thick, sticky magma that traps gas until the pressure becomes enormous, and "
    "then they explode violently, throwing ash high into the atmosphere. Scientists watch for "
    "small earthquakes, swelling of the ground and changes in the gases escaping from vents, "
    "which can warn that an eruption may be approaching.",
]

EVAL_TEXTS = [
    "The committee met on Tuesday to review the annual report. Several members questioned the "
    "rising cost of maintenance, and the treasurer agreed to prepare a detailed breakdown before "
    "the next meeting in March.",

    "Coffee plants grow best on the slopes of tropical mountains, where cool nights slow the "
    "ripening of the cherries. Slower ripening gives the beans more time to develop sugars and "
    "acids, which is one reason high altitude coffee is often described as brighter and more "
    "complex. After harvest, the seeds are removed from the fruit, dried, and later roasted, a "
    "step that transforms their flavour and colour completely.",

    "My grandmother kept a notebook of recipes that she had collected over sixty years. Some "
    "were copied neatly from magazines, others were scribbled on the backs of envelopes and "
    "glued onto the pages. Next to many of them she wrote short comments, such as too sweet, or "
    "good for Sunday, or Tom liked this one.",

    "Electric cars are quieter and simpler than petrol cars, with far fewer moving parts in the "
    "motor. Their batteries, however, are heavy and expensive, and charging takes longer than "
    "filling a tank. As charging stations become more common and battery prices continue to "
    "fall, more drivers are deciding that the lower running costs are worth the change.",

    "The village football team had not won a match all season. On the final Saturday, playing "
    "against the league leaders in pouring rain, they scored in the last minute and the small "
    "crowd ran onto the muddy pitch to celebrate.",

    "Sleep is not a passive state. During the night the brain cycles through several stages, "
    "each with its own pattern of electrical activity. Deep sleep appears to help the body "
    "repair tissue and strengthen the immune system, while the stage associated with vivid "
    "dreams seems important for memory and emotional balance. Adults who regularly sleep less "
    "than seven hours tend to have more trouble concentrating and are more likely to fall ill.",

    "The bridge was closed for repairs after engineers found cracks in two of its steel "
    "supports. Traffic was diverted through the town centre, causing long delays during the "
    "morning rush hour.",

    "Octopuses are among the most intelligent invertebrates. They can open jars, escape from "
    "closed tanks and recognise individual people. Each of their eight arms contains a large "
    "share of their neurons, which allows the arms to react to touch and taste almost "
    "independently. They can also change the colour and texture of their skin in a fraction of "
    "a second, blending into rocks, sand or coral.",

    "Before the meeting, please read the attached proposal and note any questions you have about "
    "the schedule or the budget. We will spend the first half hour on the timeline and the rest "
    "on the list of suppliers.",

    "The desert looks empty at midday, when the heat drives most animals into burrows and "
    "shade. At dusk it comes alive. Foxes leave their dens to hunt, owls glide low over the "
    "sand, and beetles and lizards appear from under stones. Many desert plants also open their "
    "flowers at night, relying on moths and bats rather than bees to carry their pollen.",

    "A good cup of tea depends on fresh water, the right temperature and patience. Green tea "
    "becomes bitter if the water is boiling, while black tea needs the heat to release its full "
    "flavour.",

    "The library plans to extend its opening hours during the exam period. Study rooms can be "
    "booked online up to a week in advance, and the cafe on the ground floor will stay open "
    "until ten in the evening. Visitors are reminded that quiet zones on the upper floors are "
    "strictly for silent work.",

    "Glaciers move slowly downhill under their own weight, grinding the rock beneath them and "
    "carrying boulders for many miles. When they melt, they leave behind long ridges of gravel, "
    "deep valleys with steep sides, and lakes filling the hollows they carved. Much of the "
    "landscape of northern Europe and North America was shaped this way during the last ice age.",

    "He opened the door slowly and stepped into the dusty room. Sunlight fell through a broken "
    "shutter onto a desk covered in papers, a cold cup of tea, and a photograph of a woman he "
    "did not recognise.",

    "Vaccines work by training the immune system to recognise a germ without causing the "
    "disease itself. They contain a weakened or inactive form of the germ, or just a piece of "
    "it, which prompts the body to produce antibodies and memory cells. If the real germ "
    "appears later, the immune system can respond quickly enough to prevent serious illness.",

    "The recipe calls for two cups of flour, one cup of sugar, three eggs and a teaspoon of "
    "vanilla. Mix the dry ingredients first, then add the eggs one at a time, and bake for about "
    "forty minutes until a knife comes out clean.",

    "Renting an apartment in a large city often involves more than paying the monthly rent. "
    "Tenants may need to provide a deposit, proof of income, and references from previous "
    "landlords. It is wise to read the lease carefully, take photographs of any existing damage "
    "when moving in, and keep copies of all messages about repairs, in case there is a "
    "disagreement when the tenancy ends.",

    "Chess players spend years studying openings, but most games are decided by simple "
    "mistakes in the middle of the game. Coaches encourage beginners to check every move for "
    "threats, to develop their pieces quickly, and to keep their king safe before launching an "
    "attack.",

    "The river flooded twice this spring, covering the low fields with a thin layer of silt. "
    "Farmers say the soil will be richer for it, although the planting season has been delayed "
    "by several weeks.",

    "Photography changed the way people remembered their lives. Before cameras were common, "
    "only the wealthy could afford painted portraits, and most families had no images of their "
    "ancestors at all. Cheap cameras in the twentieth century made it possible to record "
    "birthdays, holidays and ordinary afternoons, and today almost everyone carries a camera in "
    "a pocket and takes hundreds of pictures every year.",

    "Thank you for your letter of last week. I am pleased to confirm that your order has been "
    "shipped and should arrive within five working days. If anything is missing or damaged, "
    "please contact our customer service team.",

    "Wolves live and hunt in family groups called packs, usually made up of a breeding pair and "
    "their offspring from the last few years. By working together, they can bring down animals "
    "much larger than themselves, such as elk or moose. Their return to some national parks has "
    "changed the behaviour of deer, which in turn has allowed trees and shrubs along rivers to "
    "grow back.",

    "The first snow of the year fell overnight, and by morning the children were building a "
    "lopsided snowman in the park while their parents stamped their feet to keep warm.",

    "Spreadsheets are useful for far more than accounting. Teachers use them to track grades, "
    "scientists to organise measurements, and families to plan holidays and share chores. A few "
    "simple formulas for sums, averages and lookups can save hours of repetitive work, although "
    "large spreadsheets become hard to check, and a single wrong cell reference can quietly "
    "spoil every result that depends on it.",

    "Mountain weather can change within minutes. A clear blue morning may turn into fog, hail "
    "and strong wind by early afternoon, so experienced hikers carry warm layers, a map and "
    "enough water even on short walks, and they turn back when conditions look uncertain.",
]


def graph_input_names(model_path: Path) -> list[str]:
    model = onnx.load(str(model_path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def encode(tokenizer, text: str, max_tokens: int) -> list[int]:
    """Token ids of `text`, truncated to `max_tokens` (BERT keeps [CLS] ... [SEP])."""
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer.encode(text).ids


def calibration_ids(tokenizer) -> list[list[int]]:
    """Sample i: calibration text i, truncated to CALIB_LENGTHS[i]; if the text is shorter,
    the next calibration text is appended first so every target length is met."""
    samples = []
    for index, target in enumerate(CALIB_LENGTHS):
        text = CALIBRATION_TEXTS[index]
        ids = encode(tokenizer, text, target)
        if len(ids) < target:
            text += " " + CALIBRATION_TEXTS[(index + 1) % len(CALIBRATION_TEXTS)]
            ids = encode(tokenizer, text, target)
        samples.append(ids)
    return samples


def feeds_for(ids: list[int], input_names: list[str]) -> list[tuple[str, np.ndarray]]:
    """Batch-1 feed in graph-input order."""
    input_ids = np.array([ids], dtype=np.int64)
    known = {"input_ids": input_ids,
             "attention_mask": np.ones_like(input_ids),
             "token_type_ids": np.zeros_like(input_ids)}
    missing = [name for name in input_names if name not in known]
    if missing:
        raise SystemExit(f"error: don't know how to fill graph inputs {missing}")
    return [(name, known[name]) for name in input_names]


def write_sets(folder: Path, samples: list[list[int]], input_names: list[str],
               session=None) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for index, ids in enumerate(samples):
        feed = feeds_for(ids, input_names)
        outputs = []
        if session is not None:
            names = [o.name for o in session.get_outputs()]
            outputs = list(zip(names, session.run(names, dict(feed))))
        realmodels.write_test_data_set(folder / f"test_data_set_{index}", feed, outputs)


def make_data(model_dir: Path, write_npy: bool) -> dict:
    from tokenizers import Tokenizer

    model_path = model_dir / "model.onnx"
    input_names = graph_input_names(model_path)
    is_bert = "token_type_ids" in input_names
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    session = realmodels.ort_session(model_path)

    beside = encode(tokenizer, BESIDE_MODEL_TEXT, MAX_TOKENS)
    feed = feeds_for(beside, input_names)
    output_names = [o.name for o in session.get_outputs()]
    outputs = list(zip(output_names, session.run(output_names, dict(feed))))
    realmodels.write_test_data_set(model_dir / "test_data_set_0", feed, outputs)

    calib = calibration_ids(tokenizer)
    write_sets(model_dir / "calib", calib, input_names)
    if write_npy:
        npy_root = model_dir / "calib-npy"
        if npy_root.exists():
            shutil.rmtree(npy_root)
        for index, ids in enumerate(calib):
            realmodels.write_npy_sample(npy_root / f"sample_{index:03d}", feeds_for(ids, input_names))

    held_out = [encode(tokenizer, text, MAX_TOKENS) for text in EVAL_TEXTS]
    write_sets(model_dir / "eval", held_out, input_names, session if is_bert else None)

    manifest = {
        "model": str(model_path.name), "family": "bert" if is_bert else "causal-lm",
        "inputs": input_names, "max_tokens": MAX_TOKENS,
        "beside_model": {"tokens": len(beside), "text": BESIDE_MODEL_TEXT},
        "calib": [{"tokens": len(ids), "text_index": i} for i, ids in enumerate(calib)],
        "eval": [{"tokens": len(ids), "text_index": i} for i, ids in enumerate(held_out)],
        "calibration_texts": CALIBRATION_TEXTS, "eval_texts": EVAL_TEXTS,
    }
    if not is_bert:
        manifest["eval_fp32_perplexity_onnxruntime"] = realmodels.eval_perplexity(
            lambda ids: session.run(["logits"], {"input_ids": ids})[0], model_dir / "eval")
    (model_dir / "data-manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dirs", nargs="*", type=Path,
                        help="model folders (default: every OUT/*/ with model.onnx and tokenizer.json)")
    parser.add_argument("--out", type=Path, default=realmodels.DEFAULT_OUT,
                        help="root searched when no MODEL_DIR is given (default: build/real)")
    parser.add_argument("--no-npy", action="store_true", help="do not write calib-npy/")
    args = parser.parse_args()

    model_dirs = args.model_dirs or sorted(
        d for d in args.out.glob("*") if (d / "model.onnx").exists() and (d / "tokenizer.json").exists())
    if not model_dirs:
        print(f"error: no model folders under {args.out}; run tools/build_minilm.py and "
              f"tools/build_smollm2.py first", file=sys.stderr)
        return 1
    overlap = set(CALIBRATION_TEXTS) & set(EVAL_TEXTS)
    assert not overlap, "calibration and eval texts must be disjoint"
    for model_dir in model_dirs:
        started = time.perf_counter()
        manifest = make_data(model_dir, not args.no_npy)
        calib_lengths = [s["tokens"] for s in manifest["calib"]]
        eval_lengths = [s["tokens"] for s in manifest["eval"]]
        print(f"{model_dir}: {manifest['family']}, inputs {manifest['inputs']}")
        print(f"  calib {len(calib_lengths)} samples, tokens {calib_lengths}")
        print(f"  eval  {len(eval_lengths)} samples, tokens {min(eval_lengths)}..{max(eval_lengths)} "
              f"(total {sum(eval_lengths)})")
        if "eval_fp32_perplexity_onnxruntime" in manifest:
            print(f"  eval fp32 perplexity (onnxruntime) {manifest['eval_fp32_perplexity_onnxruntime']:.3f}")
        print(f"  done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
