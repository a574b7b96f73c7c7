"""Train the screen's learned model (concierge.safety.learned) on the development sets and
write its weights: `make screen-model`, or

    .venv/bin/python -m concierge_cli.screen_model [--out PATH] [--folds 5]

The development sets are bench/safety/*.jsonl and bench/safety/more/*.jsonl; the held-out set
(bench/safety/holdout/) is never read here. The threshold is chosen on out-of-fold scores:
the lowest probability that keeps false positives on benign items at or under the target, so
the figure `bench` reports on the held-out set is an honest estimate.

Pure Python (logistic regression with AdaGrad and L2), deterministic: the same sets give the
same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from concierge.safety.learned import MODEL_PATH, features
from concierge.safety.screen import evidence

ROOT = Path(__file__).resolve().parents[2]
SETS = ROOT / "bench" / "safety"
# Out-of-fold false positives on benign items each threshold keeps under: for questions below
# the goal of 2 %, so unseen data has room; for documents lower still, because a knowledge
# base's pages are full of instructions to their readers and a passage left out costs answers.
TARGET_FALSE_POSITIVES = {"question": 0.01, "document": 0.01}
HIGHEST_THRESHOLD = 0.999
EPOCHS = 40
LEARNING_RATE = 0.3
L2 = 1e-4
MIN_EXAMPLES = 2  # a feature seen in fewer training texts is left out
PRUNE_BELOW = 0.02  # weights smaller than this are not shipped
SEED = 20261201


@dataclass(frozen=True)
class Example:
    id: str
    label: int  # 1 attack, 0 benign
    kind: str  # question | document
    text: str
    family: str
    language: str


def development_files(root: Path = SETS) -> list[Path]:
    """The sets the model learns from, in a stable order (never the held-out set)."""
    return sorted([*root.glob("*.jsonl"), *(root / "more").glob("*.jsonl")])


def digest(paths: Iterable[Path]) -> str:
    """What the weights were trained on: the sets' bytes and the feature code's."""
    hashed = hashlib.sha256()
    sources = ROOT / "layers" / "concierge" / "concierge" / "safety"
    for path in [*paths, sources / "learned.py", sources / "patterns.py", sources / "screen.py"]:
        hashed.update(path.name.encode())
        hashed.update(path.read_bytes())
    return hashed.hexdigest()[:16]


def read_examples(paths: Iterable[Path]) -> Iterator[Example]:
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            label = item.get("label") or ("benign" if "benign" in path.name else "attack")
            # A conversation is screened as its turns read together (screen_conversation).
            text = "\n".join(item["turns"]) if item["kind"] == "conversation" else item["text"]
            yield Example(
                id=item["id"],
                label=int(label == "attack"),
                kind="document" if item["kind"] == "document" else "question",
                text=text,
                family=item.get("family", ""),
                language=item.get("language", ""),
            )


Vector = dict[str, float]


def vectorise(example: Example) -> Vector:
    plain, strengths = evidence(example.text, example.kind)  # type: ignore[arg-type]
    return features(plain, strengths, example.kind)


def train(
    vectors: list[Vector], labels: list[int], vocabulary: set[str]
) -> tuple[float, dict[str, float]]:
    """Logistic regression, classes weighted to count equally, AdaGrad steps, L2."""
    positives = sum(labels)
    class_weight = {
        1: len(labels) / (2 * positives),
        0: len(labels) / (2 * (len(labels) - positives)),
    }
    weights: dict[str, float] = {}
    squares: dict[str, float] = {}
    bias, bias_square = 0.0, 0.0
    order = list(range(len(vectors)))
    rng = random.Random(SEED)  # noqa: S311 - a repeatable order, not a secret
    for _ in range(EPOCHS):
        rng.shuffle(order)
        for index in order:
            vector = {name: value for name, value in vectors[index].items() if name in vocabulary}
            total = bias + sum(weights.get(name, 0.0) * value for name, value in vector.items())
            predicted = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, total))))
            error = (predicted - labels[index]) * class_weight[labels[index]]
            bias_square += error * error
            bias -= LEARNING_RATE * error / math.sqrt(bias_square + 1e-8)
            for name, value in vector.items():
                gradient = error * value + L2 * weights.get(name, 0.0)
                squares[name] = squares.get(name, 0.0) + gradient * gradient
                weights[name] = weights.get(name, 0.0) - LEARNING_RATE * gradient / math.sqrt(
                    squares[name] + 1e-8
                )
    return bias, weights


def probability(bias: float, weights: dict[str, float], vector: Vector) -> float:
    total = bias + sum(weights.get(name, 0.0) * value for name, value in vector.items())
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, total))))


def vocabulary_of(vectors: Iterable[Vector]) -> set[str]:
    seen = Counter(name for vector in vectors for name in vector)
    return {name for name, count in seen.items() if count >= MIN_EXAMPLES}


def out_of_fold(vectors: list[Vector], labels: list[int], folds: int) -> list[float]:
    """Each example's probability from a model that did not see it."""
    order = list(range(len(vectors)))
    random.Random(SEED).shuffle(order)  # noqa: S311 - repeatable folds, not a secret
    scores = [0.0] * len(vectors)
    for fold in range(folds):
        held = set(order[fold::folds])
        train_indices = [i for i in range(len(vectors)) if i not in held]
        vocabulary = vocabulary_of(vectors[i] for i in train_indices)
        bias, weights = train(
            [vectors[i] for i in train_indices], [labels[i] for i in train_indices], vocabulary
        )
        for index in held:
            scores[index] = probability(bias, weights, vectors[index])
    return scores


def threshold_for(scores: list[float], labels: list[int], target: float) -> float:
    """The lowest threshold that keeps the benign items' false-positive rate at `target`."""
    benign = sorted(
        (score for score, label in zip(scores, labels, strict=True) if not label), reverse=True
    )
    allowed = math.floor(target * len(benign))
    # Just above the (allowed + 1)-th highest benign score.
    return (
        min(HIGHEST_THRESHOLD, max(0.5, benign[allowed] + 1e-6)) if allowed < len(benign) else 0.5
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concierge_cli.screen_model", description=__doc__)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)

    files = development_files()
    examples = list(read_examples(files))
    vectors = [vectorise(example) for example in examples]
    labels = [example.label for example in examples]
    print(
        f"training on {len(examples)} texts ({sum(labels)} attacks) from {len(files)} files",
        file=sys.stderr,
    )

    scores = out_of_fold(vectors, labels, args.folds)
    thresholds = {}
    for kind, target in TARGET_FALSE_POSITIVES.items():
        chosen = [i for i, example in enumerate(examples) if example.kind == kind]
        kind_scores, kind_labels = [scores[i] for i in chosen], [labels[i] for i in chosen]
        thresholds[kind] = threshold_for(kind_scores, kind_labels, target)
        caught = sum(
            s >= thresholds[kind] for s, y in zip(kind_scores, kind_labels, strict=True) if y
        )
        false = sum(
            s >= thresholds[kind] for s, y in zip(kind_scores, kind_labels, strict=True) if not y
        )
        attacks, benign = sum(kind_labels), len(kind_labels) - sum(kind_labels)
        print(
            f"out of fold, {kind}s: threshold {thresholds[kind]:.3f}, attacks caught "
            f"{caught}/{attacks} ({caught / attacks:.1%}), false positives {false}/{benign} "
            f"({false / benign:.1%}) (the patterns' sure verdicts come on top)",
            file=sys.stderr,
        )

    vocabulary = vocabulary_of(vectors)
    bias, weights = train(vectors, labels, vocabulary)
    kept = {
        name: round(weight, 4)
        for name, weight in sorted(weights.items())
        if abs(weight) >= PRUNE_BELOW
    }
    document = {
        "trained_on": digest(files),
        "thresholds": {kind: round(value, 4) for kind, value in thresholds.items()},
        "bias": round(bias, 4),
        "weights": kept,
    }
    args.out.write_text(
        json.dumps(document, ensure_ascii=False, indent=0, sort_keys=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out} ({len(kept)} weights)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
