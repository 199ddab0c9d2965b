"""Count the words in every .txt file of the input bundle and write them, most frequent first, to counts.csv."""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from datapipe.bundles.transform import InputBundle, OutputBundle, ParameterValue, Transform

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


class WordCount(Transform):
    """Input: .txt files. Output: counts.csv (word,count) and the tags `words` (total) and `distinct`."""

    parameters: ClassVar[Mapping[str, ParameterValue]] = {"min_length": 1, "top": 0}  # top=0 keeps every word

    def run(self, inputs: InputBundle, outputs: OutputBundle, params: Mapping[str, Any]) -> None:
        texts = [name for name in inputs.files if name.endswith(".txt")]
        if not texts:
            raise ValueError(f"input bundle '{inputs.name}' holds no .txt file")
        counts: Counter[str] = Counter()
        for name in texts:
            words = WORD.findall(inputs.read_text(name).lower())
            counts.update(word for word in words if len(word) >= params["min_length"])
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if params["top"]:
            ranked = ranked[: params["top"]]
        with outputs.path("counts.csv").open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["word", "count"])
            writer.writerows(ranked)
        outputs.tags["words"] = str(sum(counts.values()))
        outputs.tags["distinct"] = str(len(counts))
